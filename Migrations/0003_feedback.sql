-- Feedback: the measure framework (versioned wording) and what children, young people and
-- families said, with scored responses; a safeguarding concern opens an alert in the same
-- transaction. Every table carries tenant_id with forced row-level security, like 0002.

-- A tenant's measures: Dudley's six principles by default (DOMAIN.md), configurable.
CREATE TABLE measures (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    code             text NOT NULL CHECK (code ~ '^[a-z][a-z0-9_]{1,62}$'),
    measure_group    text NOT NULL CHECK (measure_group IN ('principle', 'practice_outcome', 'change_outcome', 'quality_of_life', 'other')),
    active           boolean NOT NULL DEFAULT true,
    current_version  integer NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, code)
);

-- Each wording and scale a measure has had: a response keeps the version it was given against.
CREATE TABLE measure_versions (
    tenant_id    uuid NOT NULL,
    measure_id   uuid NOT NULL,
    version      integer NOT NULL CHECK (version >= 1),
    wording      text NOT NULL CHECK (length(wording) BETWEEN 1 AND 500),
    scale_min    integer NOT NULL,
    scale_max    integer NOT NULL,
    agree_from   integer NOT NULL,
    labels       text[] NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, measure_id, version),
    FOREIGN KEY (tenant_id, measure_id) REFERENCES measures (tenant_id, id),
    CHECK (scale_min < scale_max AND agree_from BETWEEN scale_min AND scale_max),
    CHECK (cardinality(labels) = 0 OR cardinality(labels) = scale_max - scale_min + 1)
);

CREATE TABLE feedback (
    tenant_id             uuid NOT NULL REFERENCES tenants (id),
    id                    uuid NOT NULL DEFAULT gen_random_uuid(),
    -- A stable order for cursor paging that never skips or repeats a row.
    seq                   bigint GENERATED ALWAYS AS IDENTITY,
    organisation_id       uuid,
    source_system         text NOT NULL CHECK (length(source_system) BETWEEN 1 AND 100),
    external_id           text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 200),
    channel               text NOT NULL,
    respondent_role       text NOT NULL,
    age_band              text NOT NULL,
    service_area          text NOT NULL,
    team                  text CHECK (length(team) BETWEEN 1 AND 100),
    stage                 text NOT NULL,
    kind                  text NOT NULL,
    given_at              timestamptz NOT NULL,
    subject_ref           text CHECK (length(subject_ref) BETWEEN 1 AND 100),
    comment               text CHECK (length(comment) <= 8000),
    anonymous             boolean NOT NULL,
    consent_to_follow_up  boolean NOT NULL,
    safeguarding_concern  boolean NOT NULL,
    gender                text,
    ethnicity             text,
    disability            text,
    -- SHA-256 of the canonical content: a retry with the same content is the same record.
    content_hash          text NOT NULL,
    version               integer NOT NULL DEFAULT 1,
    created_by            uuid,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, source_system, external_id),
    FOREIGN KEY (tenant_id, organisation_id) REFERENCES organisations (tenant_id, id)
);
CREATE INDEX feedback_tenant_seq ON feedback (tenant_id, seq);
CREATE INDEX feedback_tenant_given ON feedback (tenant_id, given_at);

CREATE TABLE feedback_responses (
    tenant_id        uuid NOT NULL,
    feedback_id      uuid NOT NULL,
    measure_id       uuid NOT NULL,
    measure_version  integer NOT NULL,
    score            integer NOT NULL,
    PRIMARY KEY (tenant_id, feedback_id, measure_id),
    FOREIGN KEY (tenant_id, feedback_id) REFERENCES feedback (tenant_id, id),
    FOREIGN KEY (tenant_id, measure_id, measure_version) REFERENCES measure_versions (tenant_id, measure_id, version)
);

-- A safeguarding concern is never just stored: someone must acknowledge it.
CREATE TABLE safeguarding_alerts (
    tenant_id        uuid NOT NULL,
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    feedback_id      uuid NOT NULL,
    organisation_id  uuid,
    raised_at        timestamptz NOT NULL DEFAULT now(),
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged')),
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    action_taken     text,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, feedback_id),
    FOREIGN KEY (tenant_id, feedback_id) REFERENCES feedback (tenant_id, id)
);

ALTER TABLE measures ENABLE ROW LEVEL SECURITY;
ALTER TABLE measures FORCE ROW LEVEL SECURITY;
ALTER TABLE measure_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE measure_versions FORCE ROW LEVEL SECURITY;
ALTER TABLE feedback ENABLE ROW LEVEL SECURITY;
ALTER TABLE feedback FORCE ROW LEVEL SECURITY;
ALTER TABLE feedback_responses ENABLE ROW LEVEL SECURITY;
ALTER TABLE feedback_responses FORCE ROW LEVEL SECURITY;
ALTER TABLE safeguarding_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE safeguarding_alerts FORCE ROW LEVEL SECURITY;

-- Measures are the tenant's framework: every key of the tenant reads them.
CREATE POLICY tenant_isolation ON measures
    USING (tenant_id = heard_current_tenant()) WITH CHECK (tenant_id = heard_current_tenant());
CREATE POLICY tenant_isolation ON measure_versions
    USING (tenant_id = heard_current_tenant()) WITH CHECK (tenant_id = heard_current_tenant());
-- Feedback and its alerts: a partner's key sees only what is attributed to its organisation.
CREATE POLICY tenant_isolation ON feedback
    USING (heard_row_visible(tenant_id, organisation_id)) WITH CHECK (heard_row_visible(tenant_id, organisation_id));
CREATE POLICY tenant_isolation ON feedback_responses
    USING (tenant_id = heard_current_tenant()
           AND EXISTS (SELECT 1 FROM feedback f WHERE f.tenant_id = feedback_responses.tenant_id AND f.id = feedback_responses.feedback_id))
    WITH CHECK (tenant_id = heard_current_tenant());
CREATE POLICY tenant_isolation ON safeguarding_alerts
    USING (heard_row_visible(tenant_id, organisation_id)) WITH CHECK (heard_row_visible(tenant_id, organisation_id));

-- The owner seeds a new tenant's default measures (heard tenants create).
DO $$
BEGIN
    EXECUTE format('CREATE POLICY owner_registry ON measures TO %I USING (true) WITH CHECK (true)', current_user);
    EXECUTE format('CREATE POLICY owner_registry ON measure_versions TO %I USING (true) WITH CHECK (true)', current_user);
END
$$;

GRANT SELECT, INSERT, UPDATE ON measures, measure_versions TO heard_runtime;
GRANT SELECT, INSERT, UPDATE ON feedback TO heard_runtime;
GRANT SELECT, INSERT ON feedback_responses TO heard_runtime;
GRANT SELECT, INSERT, UPDATE ON safeguarding_alerts TO heard_runtime;

-- Dudley's six principles for every tenant that exists already (new ones get them on creation).
CREATE FUNCTION heard_seed_default_measures(p_tenant uuid) RETURNS void
    LANGUAGE plpgsql VOLATILE
    AS $$
    DECLARE
        principle record;
        new_id uuid;
    BEGIN
        FOR principle IN
            SELECT * FROM (VALUES
                ('listened_to', 'I am listened to'),
                ('worker_knows_me', 'My worker knows me and understands my needs'),
                ('involved_in_decisions', 'I am involved in decisions about me'),
                ('professionals_keep_promises', 'Professionals do what they say they are going to do and keep me informed'),
                ('service_meets_needs', 'The service or support I receive is good and meets my needs'),
                ('listened_to_about_services', 'I have been listened to about how services could be made better')
            ) AS p (code, wording)
        LOOP
            IF NOT EXISTS (SELECT 1 FROM measures WHERE tenant_id = p_tenant AND code = principle.code) THEN
                INSERT INTO measures (tenant_id, code, measure_group) VALUES (p_tenant, principle.code, 'principle')
                    RETURNING id INTO new_id;
                INSERT INTO measure_versions (tenant_id, measure_id, version, wording, scale_min, scale_max, agree_from, labels)
                VALUES (p_tenant, new_id, 1, principle.wording, 1, 5, 4,
                        ARRAY['Strongly disagree', 'Disagree', 'Neither agree nor disagree', 'Agree', 'Strongly agree']);
            END IF;
        END LOOP;
    END
    $$;

SELECT heard_seed_default_measures(id) FROM tenants;
REVOKE ALL ON FUNCTION heard_seed_default_measures(uuid) FROM PUBLIC;
