-- The patient's acknowledgement says what is true: an answer that needs the agenda (confirm,
-- cancel) is acknowledged when its write-back is done, with a holding message while the agenda
-- is slow or down, and a "the centre will call you" message when it finally fails. The outbox
-- row carries the acknowledgement it owes: the reply, the channel to answer on, its kind.
ALTER TABLE outbox ADD COLUMN ack_reply_id INTEGER;
ALTER TABLE outbox ADD COLUMN ack_channel TEXT;
ALTER TABLE outbox ADD COLUMN ack TEXT;
-- The kind of acknowledgement an attempt sends (recovery after a crash re-sends the same one).
ALTER TABLE attempts ADD COLUMN ack TEXT;
