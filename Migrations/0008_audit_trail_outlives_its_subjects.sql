-- The audit trail is evidence, not a reference: it records which tenant a key acted for, and
-- must outlive what it records. A foreign key from audit_events to tenants said the opposite
-- (no tenant with an audit trail could ever be removed without rewriting the trail), and cost
-- a lookup and a row lock in tenants for every audit row: one per record a batch creates.
-- A row's tenant still comes from the key that acted (row-level security checks it against
-- the transaction's tenant on every insert), and the service may never update or delete a row.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_tenant_id_fkey;
