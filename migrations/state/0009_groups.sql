-- Group membership the daemon manages ([[groups]] rules).
--
-- managed_memberships: the memberships the daemon made (or found in place
-- when it added them), one row per person, tenant and group. The plan adds
-- and removes only the difference between what the rules say and these
-- rows, so a membership someone made by hand in a group no rule names is
-- never touched. `member_id` is the Entra user the membership is for: a
-- row is only ever read for the account the person is linked to now.
CREATE TABLE managed_memberships (
    plumm_user_id INTEGER NOT NULL,
    tenant_id     TEXT NOT NULL,
    group_id      TEXT NOT NULL,
    -- The managed group's name, or NULL for a group named by id.
    group_name    TEXT,
    member_id     TEXT NOT NULL,
    added_at      TEXT NOT NULL,
    PRIMARY KEY (plumm_user_id, tenant_id, group_id)
);

-- managed_groups: the groups the daemon manages by name, per tenant. A row
-- with no group_id is a create under way (recorded before the POST): until
-- the replication window has passed, a lookup that does not find the
-- group is lag, not absence, and no second group is created.
CREATE TABLE managed_groups (
    tenant_id     TEXT NOT NULL,
    name          TEXT NOT NULL COLLATE NOCASE,
    mail_nickname TEXT NOT NULL,
    group_id      TEXT,
    created_by_us INTEGER NOT NULL DEFAULT 0,
    at            TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
