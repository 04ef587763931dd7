-- entra-daemon: the hand-over watermark, Plumm's side.
--
-- The last outbox row the daemon recorded in its state database and then
-- removed from this file, written in the same transaction as the removal.
-- The state database keeps its own copy (its outbox cursor). When the two
-- disagree at start, one database is older than the other (the state
-- database restored from a backup, or lost; or Plumm's restored): changes
-- handed over in between are gone from the outbox, so the daemon says so
-- and resyncs. NULL until the first hand-over after this migration.
CREATE TABLE IF NOT EXISTS entra_handover (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  cursor      INTEGER,
  updated_at  TEXT
);
INSERT OR IGNORE INTO entra_handover (id, cursor, updated_at) VALUES (1, NULL, NULL);
