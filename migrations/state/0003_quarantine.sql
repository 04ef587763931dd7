-- Tenants that refuse the app (consent revoked, app deleted, permission
-- removed) are quarantined: their changes stay pending, the tenant is
-- probed at growing intervals, and a reconnect (or a successful probe)
-- lifts it. Other tenants are not affected.
ALTER TABLE connections ADD COLUMN quarantined_at TEXT;
ALTER TABLE connections ADD COLUMN quarantine_reason TEXT;
ALTER TABLE connections ADD COLUMN next_probe_at TEXT;
ALTER TABLE connections ADD COLUMN probes INTEGER NOT NULL DEFAULT 0;
