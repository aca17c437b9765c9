-- A council's own closure days (a shutdown between Christmas and New Year, a one-off day the
-- bank-holiday rules do not know yet): not working days for its deadlines.
CREATE TABLE tenant_closure_days (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    day         date NOT NULL,
    reason      text NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, day)
);

ALTER TABLE tenant_closure_days ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_closure_days FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_closure_days
    USING (tenant_id = heard_current_tenant()) WITH CHECK (tenant_id = heard_current_tenant());

GRANT SELECT, INSERT, DELETE ON tenant_closure_days TO heard_runtime;
