-- Complaint categories are each council's own vocabulary (DOMAIN.md §2), starting from a
-- default set: an admin adds categories and retires them; a retired category is refused on
-- new complaints and kept on the complaints and figures that have it.
CREATE TABLE complaint_categories (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    code        text NOT NULL CHECK (code ~ '^[a-z][a-z0-9_]{1,49}$'),
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    label       text NOT NULL CHECK (length(label) BETWEEN 1 AND 200),
    active      boolean NOT NULL DEFAULT true,
    version     integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, code)
);
CREATE INDEX complaint_categories_tenant_seq ON complaint_categories (tenant_id, seq);

ALTER TABLE complaint_categories ENABLE ROW LEVEL SECURITY;
ALTER TABLE complaint_categories FORCE ROW LEVEL SECURITY;
-- The council's vocabulary: every key of the tenant reads it (a partner's too, to record a
-- complaint); changing it needs a council-wide key (checked by the service).
CREATE POLICY tenant_isolation ON complaint_categories
    USING (tenant_id = heard_current_tenant()) WITH CHECK (tenant_id = heard_current_tenant());
GRANT SELECT, INSERT, UPDATE ON complaint_categories TO heard_runtime;

-- The default set, for every tenant that exists already (new ones get it on creation).
CREATE FUNCTION heard_seed_default_complaint_categories(p_tenant uuid) RETURNS void
    LANGUAGE sql VOLATILE
    AS $$
        INSERT INTO complaint_categories (tenant_id, code, label)
        SELECT p_tenant, code, label
          FROM (VALUES (1, 'communication', 'Communication'), (2, 'delay', 'Delay'), (3, 'decision', 'A decision'),
                       (4, 'staff_conduct', 'Staff conduct'), (5, 'quality_of_service', 'Quality of service'),
                       (6, 'placement', 'Placement'), (7, 'contact', 'Contact arrangements'), (8, 'financial', 'Money'),
                       (9, 'other', 'Other')) AS d (position, code, label)
         ORDER BY position
        ON CONFLICT (tenant_id, code) DO NOTHING
    $$;
REVOKE ALL ON FUNCTION heard_seed_default_complaint_categories(uuid) FROM PUBLIC;

-- Everything a new tenant starts with, in one call (Registry.createTenant). A later migration
-- that adds a default replaces this function, so creating a tenant stays one statement.
CREATE FUNCTION heard_seed_tenant(p_tenant uuid) RETURNS void
    LANGUAGE sql VOLATILE
    AS $$
        SELECT heard_seed_default_measures(p_tenant);
        SELECT heard_seed_default_complaint_categories(p_tenant);
    $$;
REVOKE ALL ON FUNCTION heard_seed_tenant(uuid) FROM PUBLIC;

ALTER TABLE complaint_categories NO FORCE ROW LEVEL SECURITY;
SELECT heard_seed_default_complaint_categories(id) FROM tenants;
ALTER TABLE complaint_categories FORCE ROW LEVEL SECURITY;
