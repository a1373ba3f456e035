-- Rappel core schema (SQLite). The PostgreSQL twin has the same name and the same tables.
-- Instants are stored as INTEGER seconds since the Unix epoch (UTC): one representation that
-- both engines sort and compare alike, and that the portable sqlx `Any` driver reads as i64.
-- States are TEXT with CHECK constraints mirroring the Rust enums that document them.

-- Built-in agenda: one row per appointment, keyed by the centre's own id per site.
CREATE TABLE appointments (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id       TEXT    NOT NULL,
    external_id   TEXT    NOT NULL,
    exam_code     TEXT    NOT NULL,
    starts_at     INTEGER NOT NULL,
    duration_min  INTEGER NOT NULL CHECK (duration_min > 0),
    patient_name  TEXT    NOT NULL,
    phone         TEXT,                     -- E.164, NULL when the agenda had no usable number
    locale        TEXT    NOT NULL,
    channel_pref  TEXT    NOT NULL CHECK (channel_pref IN ('sms', 'whatsapp', 'call')),
    status        TEXT    NOT NULL CHECK (status IN ('booked', 'confirmed', 'cancelled')),
    -- bumps whenever the start, exam or phone changes: a campaign belongs to one version
    version       INTEGER NOT NULL DEFAULT 1,
    updated_at    INTEGER NOT NULL,
    UNIQUE (site_id, external_id)
);
CREATE INDEX appointments_starts_at ON appointments (starts_at);

-- One campaign per appointment version.
CREATE TABLE campaigns (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    appointment_id      INTEGER NOT NULL REFERENCES appointments (id),
    appointment_version INTEGER NOT NULL,
    site_id             TEXT    NOT NULL,
    policy              TEXT    NOT NULL,
    phone               TEXT,
    -- patient's phone + local day: several appointments of one patient that day share one message
    group_key           TEXT,
    lead_id             INTEGER REFERENCES campaigns (id),
    state               TEXT    NOT NULL CHECK (state IN (
        'scheduled', 'awaiting_reply', 'confirmed', 'cancelled', 'reschedule_requested',
        'needs_human', 'unreachable', 'opted_out', 'invalid_contact', 'expired',
        'cancelled_upstream')),
    step                INTEGER NOT NULL DEFAULT 0,
    attempt             INTEGER NOT NULL DEFAULT 0,
    -- the next step's instant; NULL when nothing is due (terminal, or a follower of a group)
    due_at              INTEGER,
    -- lease of the dispatcher that claimed the due step; an expired lease is claimed again
    claimed_until       INTEGER,
    -- token of that claim: a stale job whose lease was taken over finds nothing to do
    claim_token         TEXT,
    last_intent         TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    UNIQUE (appointment_id, appointment_version)
);
CREATE INDEX campaigns_due ON campaigns (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX campaigns_phone ON campaigns (phone, created_at);
CREATE INDEX campaigns_group ON campaigns (group_key);

-- Every send or call, recorded under its unique key before the provider is called.
CREATE TABLE attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id  INTEGER NOT NULL REFERENCES campaigns (id),
    step         INTEGER NOT NULL,
    attempt      INTEGER NOT NULL,
    channel      TEXT    NOT NULL CHECK (channel IN ('sms', 'whatsapp', 'call')),
    purpose      TEXT    NOT NULL CHECK (purpose IN ('request', 'ack')),
    phone        TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN (
        'sending', 'sent', 'delivered', 'read', 'undelivered', 'failed', 'refused')),
    provider_id  TEXT,
    error_code   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (campaign_id, step, attempt)
);
CREATE INDEX attempts_phone_day ON attempts (phone, created_at);
CREATE INDEX attempts_provider ON attempts (provider_id);

-- Append-only ledger: what happened to each campaign, in order. Never updated.
CREATE TABLE events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id  INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    detail       TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX events_campaign ON events (campaign_id, id);

-- Inbound replies, idempotent by the provider's message id.
CREATE TABLE replies (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    provider_id   TEXT    NOT NULL UNIQUE,
    campaign_id   INTEGER,
    phone         TEXT    NOT NULL,
    channel       TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    intent        TEXT    NOT NULL CHECK (intent IN (
        'confirm', 'cancel', 'reschedule', 'question', 'opt_out', 'urgent', 'wrong_person', 'unclear')),
    confidence    REAL    NOT NULL,
    reason        TEXT    NOT NULL,
    received_at   INTEGER NOT NULL
);

-- Work for the secretaries, most urgent first (priority 1 = urgent … 4 = low).
CREATE TABLE notes (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id       TEXT    NOT NULL,
    campaign_id   INTEGER,
    reply_id      INTEGER,
    priority      INTEGER NOT NULL CHECK (priority BETWEEN 1 AND 4),
    reason        TEXT    NOT NULL,
    detail        TEXT    NOT NULL DEFAULT '',
    state         TEXT    NOT NULL CHECK (state IN ('open', 'resolved')),
    created_at    INTEGER NOT NULL,
    resolved_at   INTEGER,
    resolved_by   TEXT,
    resolution    TEXT,
    -- one note per cause: replaying a webhook or a step never makes a second one
    dedup_key     TEXT    NOT NULL UNIQUE
);
CREATE INDEX notes_open ON notes (state, priority, created_at);

-- Durable write-backs to the agenda: retried with backoff until done, then a person is told.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id      INTEGER NOT NULL,
    appointment_id   INTEGER NOT NULL,
    -- the appointment version the intent was about: a moved appointment is not released
    appointment_version INTEGER NOT NULL,
    action           TEXT    NOT NULL CHECK (action IN ('confirm', 'release')),
    state            TEXT    NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    tries            INTEGER NOT NULL DEFAULT 0,
    next_try_at      INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    done_at          INTEGER,
    UNIQUE (campaign_id, action)
);
CREATE INDEX outbox_due ON outbox (state, next_try_at);

-- Consent: a number that asked to stop gets nothing more from that site.
CREATE TABLE opt_outs (
    phone        TEXT    NOT NULL,
    site_id      TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (phone, site_id)
);

-- The sandbox provider's own record of what it accepted (stands in for the provider's log,
-- so that reconciliation after a crash asks it exactly as it would ask Twilio).
CREATE TABLE sandbox_messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    client_ref   TEXT    NOT NULL,   -- NOT unique: a provider does not de-duplicate
    sid          TEXT    NOT NULL UNIQUE,
    channel      TEXT    NOT NULL,
    phone        TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX sandbox_messages_ref ON sandbox_messages (client_ref);
