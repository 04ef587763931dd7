-- entra-daemon's own state: what is connected, what is linked, what is
-- still to do, and the audit log. Times are UTC, '%Y-%m-%dT%H:%M:%fZ'.

-- Company -> tenant. One company has at most one tenant (primary key); one
-- tenant belongs to at most one company while connected (partial unique index).
CREATE TABLE connections (
  company_id    INTEGER PRIMARY KEY,
  tenant_id     TEXT NOT NULL,
  status        TEXT NOT NULL CHECK (status IN ('connected', 'disconnected')),
  connected_at  TEXT NOT NULL,
  connected_by  TEXT,
  updated_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX connections_one_company_per_tenant
  ON connections (tenant_id) WHERE status = 'connected';

-- Plumm user -> Entra object. `pushed` is the JSON of the properties last
-- written (or read when linking), so an update PATCHes only what differs;
-- it carries email changes because the Entra id does not change.
CREATE TABLE links (
  plumm_user_id  INTEGER PRIMARY KEY,
  company_id     INTEGER NOT NULL,
  tenant_id      TEXT NOT NULL,
  entra_id       TEXT NOT NULL,
  pushed         TEXT NOT NULL,
  upn_fallback   INTEGER NOT NULL DEFAULT 0,
  created_by_us  INTEGER NOT NULL DEFAULT 0,
  linked_at      TEXT NOT NULL,
  updated_at     TEXT NOT NULL
);
CREATE UNIQUE INDEX links_one_plumm_user_per_entra_object ON links (tenant_id, entra_id);

-- Users whose latest change is not yet in Entra. One row per user, holding
-- the latest snapshot: a newer change replaces it and gets a new `seq`, so a
-- worker that finishes an older one leaves the newer one pending.
CREATE TABLE pending (
  plumm_user_id    INTEGER PRIMARY KEY,
  company_id       INTEGER NOT NULL,
  kind             TEXT NOT NULL CHECK (kind IN ('upsert', 'remove')),
  snapshot         TEXT NOT NULL,
  seq              INTEGER NOT NULL,
  priority         INTEGER NOT NULL,
  first_queued_at  TEXT NOT NULL,
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  TEXT,
  last_error       TEXT,
  -- 1 when a listing of the tenant just showed no Entra user with this
  -- email: the worker creates without looking the user up first.
  absent           INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX pending_by_company ON pending (company_id, priority, seq);
CREATE INDEX pending_deferred ON pending (next_attempt_at) WHERE next_attempt_at IS NOT NULL;

-- Users that cannot be pushed until someone changes them (invalid data, a
-- refusal Graph will repeat). A later change that goes through clears it.
CREATE TABLE parked (
  plumm_user_id  INTEGER PRIMARY KEY,
  company_id     INTEGER NOT NULL,
  email          TEXT NOT NULL,
  reason         TEXT NOT NULL,
  parked_at      TEXT NOT NULL
);

CREATE TABLE daemon_meta (
  id               INTEGER PRIMARY KEY CHECK (id = 1),
  outbox_cursor    INTEGER NOT NULL,
  next_seq         INTEGER NOT NULL
);
INSERT INTO daemon_meta (id, outbox_cursor, next_seq) VALUES (1, 0, 1);

-- One row per Graph write attempt and per decision. Append-only: the
-- database itself refuses to change or remove a row.
CREATE TABLE audit (
  id                 INTEGER PRIMARY KEY AUTOINCREMENT,
  at                 TEXT NOT NULL,
  company_id         INTEGER,
  tenant_id          TEXT,
  plumm_user_id      INTEGER,
  email              TEXT,
  action             TEXT NOT NULL,
  outcome            TEXT NOT NULL,
  http_status        INTEGER,
  error_code         TEXT,
  error_message      TEXT,
  request_id         TEXT,
  client_request_id  TEXT,
  attempt            INTEGER,
  duration_ms        INTEGER,
  detail             TEXT
);
CREATE INDEX audit_by_company ON audit (company_id, id);
CREATE INDEX audit_by_email ON audit (email COLLATE NOCASE, id);
CREATE INDEX audit_failures ON audit (outcome, id);

CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
BEGIN
  SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
BEGIN
  SELECT RAISE(ABORT, 'the audit log is append-only');
END;
