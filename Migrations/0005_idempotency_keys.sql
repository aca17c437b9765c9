-- Idempotency-Key (IETF httpapi draft): a create sent again with the same key is answered with
-- the first answer, never done twice. Scoped per tenant, API key and route; kept at least 7 days
-- (the service purges rows older than 8 days).
CREATE TABLE idempotency_keys (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    organisation_id  uuid,
    key_id           uuid NOT NULL,
    route            text NOT NULL,
    idempotency_key  text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    -- SHA-256 of the request body: the same key with another body is refused.
    request_hash     text NOT NULL,
    state            text NOT NULL DEFAULT 'in_flight' CHECK (state IN ('in_flight', 'completed')),
    status           integer,
    response_headers jsonb,
    response_body    bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key_id, route, idempotency_key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (tenant_id, created_at);

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON idempotency_keys
    USING (heard_row_visible(tenant_id, organisation_id)) WITH CHECK (heard_row_visible(tenant_id, organisation_id));

GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO heard_runtime;
