-- Dispatch that keeps its promises when sending takes real time.
-- A campaign's version: every state write checks the version it was decided from and bumps it,
-- so a reply or a status that arrived meanwhile always wins over a stale batch result.
ALTER TABLE campaigns ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
-- Claims are kept in real (wall-clock) seconds, whatever a simulated clock says: claimed_until
-- now holds wall time. Existing claims are released (no worker runs during a migration).
UPDATE campaigns SET claimed_until = NULL, claim_token = NULL;
-- The wall-clock instant an attempt was recorded (a provider's clock is a wall clock): crash
-- recovery looks for the provider's item created since then.
ALTER TABLE attempts ADD COLUMN recorded_wall INTEGER;
-- A provider status that arrived before the attempt's own outcome was committed: kept here and
-- applied when the outcome is recorded, never dropped.
ALTER TABLE attempts ADD COLUMN early_status TEXT;
ALTER TABLE attempts ADD COLUMN early_code TEXT;
