-- Recruitment panels (DOMAIN.md §3): young people interviewing the staff who will work with
-- them. A vacancy, its youth panel (members are participants; the panel is an activity of kind
-- interview_panel in Participation), the candidates (pseudonymous refs, never names), the
-- panel's scores, the decision and the day young people were told. Records a partner's key
-- makes are its organisation's (heard_row_visible); the rows below a vacancy share its
-- organisation.

CREATE TABLE vacancies (
    tenant_id             uuid NOT NULL REFERENCES tenants (id),
    id                    uuid NOT NULL DEFAULT gen_random_uuid(),
    seq                   bigint GENERATED ALWAYS AS IDENTITY,
    organisation_id       uuid,
    -- The sending system's own key, optional: both or neither.
    source_system         text CHECK (length(source_system) BETWEEN 1 AND 100),
    external_id           text CHECK (length(external_id) BETWEEN 1 AND 200),
    title                 text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    seniority             text NOT NULL,
    service_area          text NOT NULL,
    team                  text CHECK (length(team) BETWEEN 1 AND 100),
    -- The day in England it was recorded: a vacancy without a panel falls in a report's period by it.
    recorded_on           date NOT NULL,
    content_hash          text NOT NULL,
    -- The youth panel, once sent (PUT .../youth-panel), and its activity in Participation.
    panel_held_on         date,
    panel_weight_percent  integer CHECK (panel_weight_percent BETWEEN 0 AND 100),
    panel_scale_max       integer CHECK (panel_scale_max BETWEEN 2 AND 10),
    panel_activity_id     uuid,
    -- The decision: decided_on set once decided; appointed is the candidate's ref, or NULL for nobody.
    decided_on            date,
    appointed             text,
    -- The day young people were told the outcome, and how.
    told_on               date CHECK (told_on >= decided_on),
    told_how              text,
    version               integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_by            uuid NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, source_system, external_id),
    FOREIGN KEY (tenant_id, organisation_id) REFERENCES organisations (tenant_id, id),
    FOREIGN KEY (tenant_id, panel_activity_id) REFERENCES activities (tenant_id, id),
    CHECK ((source_system IS NULL) = (external_id IS NULL)),
    CHECK ((panel_held_on IS NULL) = (panel_activity_id IS NULL)),
    CHECK (appointed IS NULL OR decided_on IS NOT NULL),
    CHECK ((told_on IS NULL) = (told_how IS NULL) AND (told_on IS NULL OR decided_on IS NOT NULL))
);
CREATE INDEX vacancies_period ON vacancies (tenant_id, (coalesce(panel_held_on, recorded_on)));

-- Every change of a vacancy after its creation: what changed (never free text), by which key.
CREATE TABLE vacancy_history (
    tenant_id        uuid NOT NULL,
    organisation_id  uuid,
    vacancy_id       uuid NOT NULL,
    version          integer NOT NULL CHECK (version >= 2),
    change           text NOT NULL,
    key_id           uuid NOT NULL,
    request_id       text NOT NULL,
    details          jsonb NOT NULL,
    occurred_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, vacancy_id, version),
    FOREIGN KEY (tenant_id, vacancy_id) REFERENCES vacancies (tenant_id, id)
);

-- Candidates: a pseudonymous ref, unique within the vacancy.
CREATE TABLE vacancy_candidates (
    tenant_id        uuid NOT NULL,
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    seq              bigint GENERATED ALWAYS AS IDENTITY,
    organisation_id  uuid,
    vacancy_id       uuid NOT NULL,
    ref              text NOT NULL CHECK (length(ref) BETWEEN 1 AND 100),
    created_by       uuid NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, vacancy_id, ref),
    FOREIGN KEY (tenant_id, vacancy_id) REFERENCES vacancies (tenant_id, id)
);

-- The panel's members: participants of the tenant, with whether they were trained for
-- recruitment panels on the panel's day and any waiver (its reason is free text).
CREATE TABLE youth_panel_members (
    tenant_id           uuid NOT NULL,
    organisation_id     uuid,
    vacancy_id          uuid NOT NULL,
    participant_id      uuid NOT NULL,
    position            integer NOT NULL,
    trained             boolean NOT NULL,
    waiver_reason       text CHECK (length(waiver_reason) BETWEEN 1 AND 2000),
    waiver_recorded_by  uuid,
    PRIMARY KEY (tenant_id, vacancy_id, participant_id),
    FOREIGN KEY (tenant_id, vacancy_id) REFERENCES vacancies (tenant_id, id),
    FOREIGN KEY (tenant_id, participant_id) REFERENCES participants (tenant_id, id),
    CHECK ((waiver_reason IS NULL) = (waiver_recorded_by IS NULL)),
    CHECK (trained OR waiver_reason IS NOT NULL)
);

CREATE TABLE youth_panel_questions (
    tenant_id        uuid NOT NULL,
    organisation_id  uuid,
    vacancy_id       uuid NOT NULL,
    code             text NOT NULL CHECK (code ~ '^[a-z][a-z0-9_]{0,62}$'),
    wording          text NOT NULL CHECK (length(wording) BETWEEN 1 AND 500),
    position         integer NOT NULL,
    PRIMARY KEY (tenant_id, vacancy_id, code),
    FOREIGN KEY (tenant_id, vacancy_id) REFERENCES vacancies (tenant_id, id)
);

-- One member's score of one candidate on one question; replaced as a whole set. A member or
-- question taken off the panel takes its scores with it.
CREATE TABLE youth_panel_scores (
    tenant_id        uuid NOT NULL,
    seq              bigint GENERATED ALWAYS AS IDENTITY,
    organisation_id  uuid,
    vacancy_id       uuid NOT NULL,
    candidate_ref    text NOT NULL,
    question_code    text NOT NULL,
    participant_id   uuid NOT NULL,
    score            integer NOT NULL CHECK (score BETWEEN 1 AND 10),
    comment          text CHECK (length(comment) BETWEEN 1 AND 2000),
    PRIMARY KEY (tenant_id, vacancy_id, candidate_ref, question_code, participant_id),
    FOREIGN KEY (tenant_id, vacancy_id, candidate_ref) REFERENCES vacancy_candidates (tenant_id, vacancy_id, ref),
    FOREIGN KEY (tenant_id, vacancy_id, question_code) REFERENCES youth_panel_questions (tenant_id, vacancy_id, code) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, vacancy_id, participant_id) REFERENCES youth_panel_members (tenant_id, vacancy_id, participant_id) ON DELETE CASCADE
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['vacancies', 'vacancy_history', 'vacancy_candidates', 'youth_panel_members', 'youth_panel_questions',
                             'youth_panel_scores']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (heard_row_visible(tenant_id, organisation_id)) '
                       'WITH CHECK (heard_row_visible(tenant_id, organisation_id))', t);
    END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE ON vacancies TO heard_runtime;
GRANT SELECT, INSERT ON vacancy_history, vacancy_candidates TO heard_runtime;
GRANT SELECT, INSERT, UPDATE, DELETE ON youth_panel_members, youth_panel_questions, youth_panel_scores TO heard_runtime;
-- A panel sent again with other members changes who took part in its activity.
GRANT DELETE ON activity_participants TO heard_runtime;

-- Vacancies in the change feed (GET /v1/events): their creates and changes, as events.
SELECT heard_report_changes('vacancies', 'vacancy');
