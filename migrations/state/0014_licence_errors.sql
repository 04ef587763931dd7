-- Licence errors Entra reports on the people the daemon manages.
--
-- licence_errors: one row per person, product (SKU) and group whose licence
-- Entra could not assign (licenseAssignmentStates with state Error or
-- ActiveWithError, graph/api/resources/licenseassignmentstate), as the last
-- full resync's listing showed it. Entra assigns group licences in the
-- background and records the failures only on the user object, so this
-- is what `status` shows of them; licence errors are not the daemon's to
-- fix. Each resync replaces the rows of every person it listed (a row
-- whose error is gone is removed) and drops the company's rows it did not
-- refresh (the account was not listed, or licences are not read any more).
-- `group_id` is '' for a licence assigned directly.
CREATE TABLE licence_errors (
    plumm_user_id    INTEGER NOT NULL,
    company_id       INTEGER NOT NULL,
    tenant_id        TEXT NOT NULL,
    sku_id           TEXT NOT NULL,
    group_id         TEXT NOT NULL,
    -- The managed group's name when the daemon manages the group by name.
    group_name       TEXT,
    state            TEXT NOT NULL,
    error            TEXT NOT NULL,
    -- Entra's lastUpdatedDateTime of the assignment, as Graph gave it.
    entra_updated_at TEXT,
    -- When a resync first saw this error, and last saw it.
    since            TEXT NOT NULL,
    checked_at       TEXT NOT NULL,
    PRIMARY KEY (plumm_user_id, sku_id, group_id)
);
CREATE INDEX licence_errors_by_company ON licence_errors (company_id, checked_at);
