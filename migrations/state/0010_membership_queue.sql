-- Group additions waiting to be sent in batches (bulk work: an initial
-- sync, a resync, a rule change). Graph takes up to 20 members in one
-- `PATCH /groups/{id}` (members@odata.bind), so 500 people joining a group
-- cost 25 writes instead of 500. A row is the intent "this person's
-- account belongs in this group"; it leaves the table only once Graph has
-- confirmed the membership (then it is in managed_memberships) or the
-- person's own worker has taken the addition back (handed back, below).
-- Rows survive a crash: after a restart they are sent again, and a
-- membership that was in fact made is recognised, never made twice.
CREATE TABLE membership_queue (
    id            INTEGER PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    company_id    INTEGER NOT NULL,
    group_id      TEXT NOT NULL,
    -- The managed group's name, or NULL for a group named by id.
    group_name    TEXT,
    plumm_user_id INTEGER NOT NULL,
    email         TEXT NOT NULL,
    member_id     TEXT NOT NULL,
    -- Until then a 404 for the member or the group is replication lag.
    young_until   TEXT NOT NULL,
    queued_at     TEXT NOT NULL,
    not_before    TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    -- Handed back: the batched write was refused for a reason that is the
    -- person's (already a member, no such user, no permission), so the
    -- person's own worker adds them alone and gets their own answer.
    direct        INTEGER NOT NULL DEFAULT 0,
    -- Set before the batch carrying it is sent: from then on the addition
    -- may have been made, so taking it back means taking the person out
    -- (recorded, then removed), never just forgetting the row.
    sent_at       TEXT,
    UNIQUE (tenant_id, group_id, member_id)
);
CREATE INDEX membership_queue_due ON membership_queue (not_before);
CREATE INDEX membership_queue_person ON membership_queue (plumm_user_id, tenant_id);
