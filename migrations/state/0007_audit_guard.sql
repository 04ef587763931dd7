-- The audit log's pruning guard (migration 0004) is one row that only the
-- retention job updates. Deleting it used to succeed, after which retention
-- silently pruned nothing. Now the row is put back if it went missing, and
-- it cannot be deleted; a second row was already impossible (id = 1 only).
INSERT OR IGNORE INTO audit_pruning (id, active) VALUES (1, 0);

CREATE TRIGGER audit_pruning_guard_stays BEFORE DELETE ON audit_pruning
BEGIN
  SELECT RAISE(ABORT, 'the audit pruning guard cannot be removed');
END;
