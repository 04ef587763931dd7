-- entra-daemon: change capture on Plumm's users table.
--
-- Every insert, update and delete of a user writes one outbox row in the
-- same transaction as the change, so a change Plumm committed can never be
-- missed, and Plumm's application code does not change. The snapshot is the
-- whole row (after the change; before it, for a delete) as JSON: the daemon
-- converges each user to its latest snapshot, so many changes collapse
-- into one push.
CREATE TABLE IF NOT EXISTS entra_outbox (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id     INTEGER NOT NULL,
  company_id  INTEGER NOT NULL,
  op          TEXT NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
  snapshot    TEXT NOT NULL,
  created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TRIGGER IF NOT EXISTS entra_outbox_users_insert
AFTER INSERT ON users
BEGIN
  INSERT INTO entra_outbox (user_id, company_id, op, snapshot)
  VALUES (NEW.id, NEW.company_id, 'insert', json_object(
    'id', NEW.id, 'company_id', NEW.company_id, 'email', NEW.email,
    'first_name', NEW.first_name, 'last_name', NEW.last_name, 'role', NEW.role,
    'department', NEW.department, 'location', NEW.location, 'country', NEW.country,
    'status', NEW.status, 'updated_at', NEW.updated_at));
END;

CREATE TRIGGER IF NOT EXISTS entra_outbox_users_update
AFTER UPDATE ON users
BEGIN
  INSERT INTO entra_outbox (user_id, company_id, op, snapshot)
  VALUES (NEW.id, NEW.company_id, 'update', json_object(
    'id', NEW.id, 'company_id', NEW.company_id, 'email', NEW.email,
    'first_name', NEW.first_name, 'last_name', NEW.last_name, 'role', NEW.role,
    'department', NEW.department, 'location', NEW.location, 'country', NEW.country,
    'status', NEW.status, 'updated_at', NEW.updated_at));
END;

CREATE TRIGGER IF NOT EXISTS entra_outbox_users_delete
AFTER DELETE ON users
BEGIN
  INSERT INTO entra_outbox (user_id, company_id, op, snapshot)
  VALUES (OLD.id, OLD.company_id, 'delete', json_object(
    'id', OLD.id, 'company_id', OLD.company_id, 'email', OLD.email,
    'first_name', OLD.first_name, 'last_name', OLD.last_name, 'role', OLD.role,
    'department', OLD.department, 'location', OLD.location, 'country', OLD.country,
    'status', OLD.status, 'updated_at', OLD.updated_at));
END;
