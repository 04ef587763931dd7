-- Rehire restore (on_delete = "delete").
--
-- deleted_accounts: accounts this daemon soft-deleted, with the UPN and
-- mail they had. Before creating an account for a person, the daemon looks
-- for a restorable one: these first (by Plumm id or mail), then Entra's
-- deleted items by mail and UPN. A row goes when its account is restored;
-- Entra purges deleted users after 30 days, which the lookup finds out.
CREATE TABLE deleted_accounts (
    tenant_id     TEXT NOT NULL,
    entra_id      TEXT NOT NULL,
    plumm_user_id INTEGER NOT NULL,
    upn           TEXT NOT NULL,
    mail          TEXT NOT NULL,
    deleted_at    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, entra_id)
);
CREATE INDEX deleted_accounts_by_person ON deleted_accounts (tenant_id, plumm_user_id);
CREATE INDEX deleted_accounts_by_mail ON deleted_accounts (tenant_id, mail COLLATE NOCASE);
