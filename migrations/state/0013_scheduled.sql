-- Time-based changes ([sync] prehire_lead, suspend_after_leave).
--
-- scheduled_changes: what a person's dates make due later: "create" (a
-- pre-hire's account, prehire_lead before the start date), "enable" (on the
-- start date), "suspend" (on the leave date). Each converge of the person
-- replaces their rows with what their dates say now; the scheduler queues
-- the person's change when a row falls due and removes it, and the worker
-- decides again from Plumm's row, so a row is a reminder, never an order.
-- In the database, not a timer: a restart (or `run --once`) keeps them.
CREATE TABLE scheduled_changes (
    plumm_user_id INTEGER NOT NULL,
    company_id    INTEGER NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('create', 'enable', 'suspend')),
    due_at        TEXT NOT NULL,
    PRIMARY KEY (plumm_user_id, kind)
);
CREATE INDEX scheduled_changes_by_due ON scheduled_changes (due_at);
CREATE INDEX scheduled_changes_by_company ON scheduled_changes (company_id, due_at);

-- parked_properties: a property Entra refused for want of a permission
-- (employeeLeaveDateTime without User-LifeCycleInfo.ReadWrite.All), so the
-- person's later changes leave it out instead of each sending one refused
-- write first. Cleared when the company connects again (the admin granted
-- the permission and reconnected from Plumm's Store).
CREATE TABLE parked_properties (
    plumm_user_id INTEGER NOT NULL,
    company_id    INTEGER NOT NULL,
    property      TEXT NOT NULL,
    reason        TEXT NOT NULL,
    since         TEXT NOT NULL,
    PRIMARY KEY (plumm_user_id, property)
);
CREATE INDEX parked_properties_by_company ON parked_properties (company_id);
