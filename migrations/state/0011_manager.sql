-- Managers ([mapping] manager).
--
-- managers: the manager the daemon last set on a person's account (PUT
-- manager/$ref), so a manager change is one write and an unchanged one
-- none. `member_id` is the account it was set on: a row is only read for
-- the account the person is linked to now. NULL manager_id: the daemon
-- removed the manager (or found none to keep).
CREATE TABLE managers (
    plumm_user_id INTEGER PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    member_id     TEXT NOT NULL,
    manager_id    TEXT,
    set_at        TEXT NOT NULL
);

-- manager_waits: people whose manager has no Entra account yet (hired the
-- same moment, or parked). When the manager's account converges, these
-- people are queued again, so the manager is set then, not at the next
-- resync. A row goes when the person's manager is set or no longer wanted.
CREATE TABLE manager_waits (
    plumm_user_id    INTEGER PRIMARY KEY,
    company_id       INTEGER NOT NULL,
    manager_plumm_id INTEGER NOT NULL,
    since            TEXT NOT NULL
);
CREATE INDEX manager_waits_by_manager ON manager_waits (manager_plumm_id);
