-- Audit retention: rows older than `[audit] retention_days` are pruned by
-- the daemon's retention job, the only path that may remove them.
--
-- The delete trigger now lets a DELETE through only while the one-row
-- guard below says a pruning is under way. The retention job sets it,
-- deletes and clears it inside one transaction, so no other connection
-- ever sees it set (SQLite serialises writers and readers see committed
-- data only). An ordinary DELETE is refused as before. This guards against
-- mistakes and bugs; whoever can write the file can also drop triggers.
CREATE TABLE audit_pruning (
  id      INTEGER PRIMARY KEY CHECK (id = 1),
  active  INTEGER NOT NULL CHECK (active IN (0, 1))
);
INSERT INTO audit_pruning (id, active) VALUES (1, 0);

-- Pruning selects by time.
CREATE INDEX audit_by_time ON audit (at);

DROP TRIGGER audit_is_append_only_delete;
CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
WHEN NOT EXISTS (SELECT 1 FROM audit_pruning WHERE id = 1 AND active = 1)
BEGIN
  SELECT RAISE(ABORT, 'the audit log is append-only');
END;
