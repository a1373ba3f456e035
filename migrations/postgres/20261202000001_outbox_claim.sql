-- An outbox row is claimed before it is applied, so that the reply path and the outbox timer
-- (or two workers) never apply the same write-back at once. NULL = not claimed; a claim whose
-- instant passed (its holder died) may be taken again.
ALTER TABLE outbox ADD COLUMN claimed_until BIGINT;
