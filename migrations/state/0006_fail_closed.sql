-- Fail closed when Graph's answer is lost, late or never came.
--
-- `verify_first`: a write to this Entra user was sent and its outcome is not
-- known (timeout, reset, 5xx, a crash while it was in flight). `pushed` may
-- be wrong either way, so the next plan reads the user from Entra first.
-- `revoke_owed`: the suspension is applied, the sign-out is not yet.
ALTER TABLE links ADD COLUMN verify_first INTEGER NOT NULL DEFAULT 0;
ALTER TABLE links ADD COLUMN revoke_owed INTEGER NOT NULL DEFAULT 0;

-- Intent before action: a create is recorded before it is sent, with the
-- identifiers the new account will carry. Until its outcome is known
-- (`outcome` NULL), every later decision for the person looks those
-- identifiers up too, so an account whose answer never arrived is found and
-- linked (then renamed, suspended or deleted as Plumm says), never left
-- behind or created twice. A row whose outcome is harmless is removed (the
-- account is linked, or Graph refused the create); the others stay, so a
-- resync recognises an account this daemon made that nobody links.
CREATE TABLE create_intents (
  id             INTEGER PRIMARY KEY,
  plumm_user_id  INTEGER NOT NULL,
  company_id     INTEGER NOT NULL,
  tenant_id      TEXT NOT NULL,
  upn            TEXT NOT NULL,
  mail           TEXT NOT NULL,
  created_at     TEXT NOT NULL,
  -- NULL while open; 'absent': not visible to lookups after
  -- replication_timeout; 'left': the person left while it could not be
  -- looked up (its tenant was disconnected). SQLite may give the id to
  -- someone new, who must never inherit it: only a resync deprovisions
  -- what such a row made.
  outcome        TEXT CHECK (outcome IN ('absent', 'left')),
  settled_at     TEXT
);
-- Rows are removed once harmless, so the table holds only creates in doubt
-- and the few given up: one index, for the per-person look before each
-- decision; a resync's search by address reads the few rows there are.
CREATE INDEX create_intents_open ON create_intents (plumm_user_id) WHERE outcome IS NULL;
