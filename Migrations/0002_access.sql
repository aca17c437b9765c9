-- Access: tenants, partner organisations, API keys and the audit trail, with row-level security.
--
-- Roles (see README, "Database roles"):
--   * the owner (whoever runs this migration) owns every object and runs migrations and the
--     admin commands (`heard tenants`, `heard keys`...);
--   * `heard_runtime` is a NOLOGIN group role holding exactly the privileges the service needs;
--     the service logs in as a member of it (e.g. `heard_app`): not superuser, no BYPASSRLS,
--     owns nothing, so every row it touches passes the policies below.
-- Every table with tenant data has RLS enabled and FORCED, with a policy on the tenant (and,
-- for partner keys, the organisation) that the service sets per transaction with
-- set_config('heard.tenant_id', ..., true).

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'heard_runtime') THEN
        CREATE ROLE heard_runtime NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO heard_runtime;

-- The tenant and organisation of the current transaction; NULL when none is set.
CREATE FUNCTION heard_current_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('heard.tenant_id', true), '')::uuid $$;

CREATE FUNCTION heard_current_organisation() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('heard.organisation_id', true), '')::uuid $$;

-- A row is visible when it is the current tenant's and, for an organisation-bound key, the
-- current organisation's.
CREATE FUNCTION heard_row_visible(row_tenant uuid, row_organisation uuid) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT row_tenant = heard_current_tenant()
           AND (heard_current_organisation() IS NULL OR row_organisation = heard_current_organisation())
    $$;

-- A local authority.
CREATE TABLE tenants (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid GENERATED ALWAYS AS (id) STORED,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A partner organisation inside a tenant (an advocacy provider, a commissioned service).
CREATE TABLE organisations (
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    slug        text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, slug)
);

-- API keys: only a SHA-256 of the secret is kept. A key is `heard_<id>_<secret>`.
CREATE TABLE api_keys (
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    organisation_id  uuid,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    scopes           text[] NOT NULL,
    secret_hash      text NOT NULL,
    expires_on       date,
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       uuid,
    revoked_at       timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, organisation_id) REFERENCES organisations (tenant_id, id)
);
-- Authentication finds a key by its id before the tenant is known.
CREATE INDEX api_keys_by_id ON api_keys (id);

-- Who read, exported or wrote what, and who was refused. Append-only for the service.
CREATE TABLE audit_events (
    id               bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id        uuid REFERENCES tenants (id),
    organisation_id  uuid,
    key_id           uuid,
    action           text NOT NULL CHECK (action IN ('read', 'list', 'export', 'create', 'update', 'delete', 'authenticate')),
    resource_type    text NOT NULL,
    resource_id      text,
    rows_exported    integer CHECK (rows_exported >= 0),
    outcome          text NOT NULL CHECK (outcome IN ('success', 'unauthenticated', 'forbidden', 'not_found', 'rate_limited')),
    status           integer NOT NULL,
    request_id       text NOT NULL,
    occurred_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (id)
);
CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, id DESC);

-- Row-level security on every table with tenant data.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
ALTER TABLE organisations ENABLE ROW LEVEL SECURITY;
ALTER TABLE organisations FORCE ROW LEVEL SECURITY;
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON tenants
    USING (id = heard_current_tenant()) WITH CHECK (id = heard_current_tenant());
CREATE POLICY tenant_isolation ON organisations
    USING (heard_row_visible(tenant_id, id)) WITH CHECK (heard_row_visible(tenant_id, id));
CREATE POLICY tenant_isolation ON api_keys
    USING (heard_row_visible(tenant_id, organisation_id)) WITH CHECK (heard_row_visible(tenant_id, organisation_id));
CREATE POLICY tenant_isolation ON audit_events
    USING (heard_row_visible(tenant_id, organisation_id)) WITH CHECK (heard_row_visible(tenant_id, organisation_id));

-- The owner administers the registry (tenants, organisations, keys) across tenants, and records
-- refusals that no tenant can be named for. The service's role has no such policy.
DO $$
BEGIN
    EXECUTE format('CREATE POLICY owner_registry ON tenants TO %I USING (true) WITH CHECK (true)', current_user);
    EXECUTE format('CREATE POLICY owner_registry ON organisations TO %I USING (true) WITH CHECK (true)', current_user);
    EXECUTE format('CREATE POLICY owner_registry ON api_keys TO %I USING (true) WITH CHECK (true)', current_user);
    EXECUTE format('CREATE POLICY owner_unattributed ON audit_events FOR INSERT TO %I WITH CHECK (tenant_id IS NULL)', current_user);
END
$$;

-- Authentication happens before the tenant is known: this function, running as the owner,
-- finds one key by the hash of its secret and returns only what authorisation needs.
CREATE FUNCTION heard_authenticate(p_key_id uuid, p_secret_hash text)
    RETURNS TABLE (key_id uuid, tenant_id uuid, organisation_id uuid, scopes text[], expires_on date, revoked boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT k.id, k.tenant_id, k.organisation_id, k.scopes, k.expires_on, k.revoked_at IS NOT NULL
          FROM api_keys k
         WHERE k.id = p_key_id AND k.secret_hash = p_secret_hash
    $$;

-- A refusal that belongs to no tenant (an unknown key): kept for the operator, seen by no tenant.
CREATE FUNCTION heard_audit_unattributed(p_resource_type text, p_status integer, p_request_id text)
    RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        INSERT INTO audit_events (action, resource_type, outcome, status, request_id)
        VALUES ('authenticate', left(p_resource_type, 100), 'unauthenticated', p_status, left(p_request_id, 128))
    $$;

REVOKE ALL ON FUNCTION heard_authenticate(uuid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION heard_audit_unattributed(text, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION heard_authenticate(uuid, text) TO heard_runtime;
GRANT EXECUTE ON FUNCTION heard_audit_unattributed(text, integer, text) TO heard_runtime;
GRANT EXECUTE ON FUNCTION heard_current_tenant(), heard_current_organisation(), heard_row_visible(uuid, uuid) TO heard_runtime;

-- The service reads the registry of its own tenant, manages keys, and only appends audit rows.
GRANT SELECT ON tenants, organisations TO heard_runtime;
GRANT SELECT, INSERT ON api_keys TO heard_runtime;
GRANT UPDATE (revoked_at) ON api_keys TO heard_runtime;
GRANT SELECT, INSERT ON audit_events TO heard_runtime;

-- Readiness (/readyz) compares applied migrations with the files.
GRANT SELECT ON schema_migrations TO heard_runtime;
