-- The hand-over watermark, the state database's side (Plumm's is
-- entra_handover in Plumm's file).
--
-- `handover_from` is Plumm's watermark as this database last saw it: the
-- outbox removed up to there. Recorded rows wait for their removal (in
-- batches), so Plumm's watermark between `handover_from` and the outbox
-- cursor is a hand-over still under way, to finish, not an older database.
ALTER TABLE daemon_meta ADD COLUMN handover_from INTEGER;

-- What asked for a resync: 'cli' (entra-daemon resync) or 'handover' (the
-- state database found behind or ahead of Plumm's watermark at start).
ALTER TABLE resync_requests ADD COLUMN trigger TEXT NOT NULL DEFAULT 'cli';
