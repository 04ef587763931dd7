-- The hand-over watermark, the state database's side (Plumm's is
-- entra_handover in Plumm's file).
--
-- `handover_from` is the outbox cursor before the last hand-over: a crash
-- between recording a batch here and removing it from Plumm's file leaves
-- Plumm's watermark exactly there, which is an interrupted hand-over to
-- finish, not an older database.
ALTER TABLE daemon_meta ADD COLUMN handover_from INTEGER;

-- What asked for a resync: 'cli' (entra-daemon resync) or 'handover' (the
-- state database found behind or ahead of Plumm's watermark at start).
ALTER TABLE resync_requests ADD COLUMN trigger TEXT NOT NULL DEFAULT 'cli';
