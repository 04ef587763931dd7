-- Full resync: requests from the CLI to a running daemon, and the
-- mass-deprovision brake.
--
-- `entra-daemon resync` run while a daemon holds the state database's lock
-- asks that daemon through this table (no network, no pid file): it inserts
-- a row, the daemon claims it, runs the resync and writes the report back.
CREATE TABLE resync_requests (
  id                      INTEGER PRIMARY KEY AUTOINCREMENT,
  requested_at            TEXT NOT NULL,
  company_id              INTEGER,
  dry_run                 INTEGER NOT NULL DEFAULT 0,
  allow_mass_deprovision  INTEGER NOT NULL DEFAULT 0,
  status                  TEXT NOT NULL DEFAULT 'new'
                          CHECK (status IN ('new', 'running', 'done', 'failed')),
  result                  TEXT,
  finished_at             TEXT
);
CREATE INDEX resync_requests_new ON resync_requests (status) WHERE status = 'new';

-- One row per company whose suspensions and deletions tripped the brake.
-- While `status` is 'held', none is applied; a release (`resync --company ID
-- --allow-mass-deprovision`) lets through everything queued until then.
CREATE TABLE brakes (
  company_id   INTEGER PRIMARY KEY,
  status       TEXT NOT NULL CHECK (status IN ('held', 'released')),
  held_at      TEXT,
  held_count   INTEGER,
  linked       INTEGER,
  source       TEXT,
  reason       TEXT,
  released_at  TEXT,
  released_by  TEXT
);

-- Suspensions and deletions the engine let through, for the brake's
-- window. `exempt` ones were released by an admin and do not count.
CREATE TABLE deprovisions (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  company_id     INTEGER NOT NULL,
  plumm_user_id  INTEGER NOT NULL,
  at             TEXT NOT NULL,
  exempt         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX deprovisions_by_company ON deprovisions (company_id, at);
