-- The connect flow (Store -> admin consent -> OAuth callback).
--
-- One row per Connect click. Only the SHA-256 of the `state` value is kept:
-- a copy of the database cannot be used to complete someone else's consent.
-- A state is bound to the company and the Plumm admin who clicked, expires,
-- and is used at most once (`used_at`).
CREATE TABLE oauth_states (
  state_hash  TEXT PRIMARY KEY,
  company_id  INTEGER NOT NULL,
  admin_email TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  expires_at  TEXT NOT NULL,
  used_at     TEXT
);
CREATE INDEX oauth_states_by_expiry ON oauth_states (expires_at);
