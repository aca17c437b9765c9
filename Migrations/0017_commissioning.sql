-- Commissioning involvement (DOMAIN.md §4): commissioning projects moving through their stages,
-- the involvement activities of each stage, the tender's evaluation by Young Commissioners, the
-- award, and monitoring visits in the PIP model (visit, report with recommendations, revisit).
-- Participants are named by id only; narrative (recommendations, reasons) is free text.

CREATE TABLE commissioning_projects (
    tenant_id            uuid NOT NULL REFERENCES tenants (id),
    id                   uuid NOT NULL DEFAULT gen_random_uuid(),
    seq                  bigint GENERATED ALWAYS AS IDENTITY,
    organisation_id      uuid,
    title                text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    service              text NOT NULL CHECK (length(service) BETWEEN 1 AND 200),
    service_area         text NOT NULL,
    budget_band          text NOT NULL CHECK (budget_band IN ('under_100k', '100k_to_500k', '500k_to_1m', 'over_1m')),
    stage                text NOT NULL DEFAULT 'needs_analysis'
                         CHECK (stage IN ('needs_analysis', 'specification', 'tender_evaluation', 'award', 'contract_monitoring', 'closed')),
    started_on           date NOT NULL,
    -- The day of the last stage move (started_on until the first).
    stage_since          date NOT NULL,
    closed_on            date,
    -- The tender (CommissioningTender.Stored: criteria, bids, youth scores; no free text), its
    -- youth weight and the day it was recorded; its young commissioners are rows of their own.
    tender               jsonb,
    youth_weight_percent integer CHECK (youth_weight_percent BETWEEN 0 AND 100),
    tender_recorded_on   date,
    awarded_bid          text,
    awarded_on           date,
    award_matched_youth_ranking boolean,
    version              integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_by           uuid NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, organisation_id) REFERENCES organisations (tenant_id, id),
    CHECK ((stage = 'closed') = (closed_on IS NOT NULL)),
    CHECK ((awarded_bid IS NULL) = (awarded_on IS NULL) AND (awarded_bid IS NULL) = (award_matched_youth_ranking IS NULL))
);
CREATE INDEX commissioning_projects_tenant_seq ON commissioning_projects (tenant_id, seq);

-- The young people who scored a project's tender: consent for commissioning in force and young
-- commissioner training current on the day it was recorded, or a waiver of the training.
CREATE TABLE commissioning_young_commissioners (
    tenant_id        uuid NOT NULL,
    organisation_id  uuid,
    project_id       uuid NOT NULL,
    participant_id   uuid NOT NULL,
    position         integer NOT NULL CHECK (position >= 0),
    trained          boolean NOT NULL,
    waiver_reason    text CHECK (length(waiver_reason) BETWEEN 1 AND 2000),
    PRIMARY KEY (tenant_id, project_id, participant_id),
    FOREIGN KEY (tenant_id, project_id) REFERENCES commissioning_projects (tenant_id, id),
    FOREIGN KEY (tenant_id, participant_id) REFERENCES participants (tenant_id, id),
    CHECK (trained OR waiver_reason IS NOT NULL)
);
CREATE INDEX commissioning_young_commissioners_participant ON commissioning_young_commissioners (tenant_id, participant_id);

-- An activity of Participation (kind commissioning) that involved young people in a stage.
CREATE TABLE commissioning_involvement (
    tenant_id        uuid NOT NULL,
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    seq              bigint GENERATED ALWAYS AS IDENTITY,
    organisation_id  uuid,
    project_id       uuid NOT NULL,
    activity_id      uuid NOT NULL,
    stage            text NOT NULL CHECK (stage IN ('needs_analysis', 'specification', 'tender_evaluation', 'award', 'contract_monitoring')),
    created_by       uuid NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, project_id, activity_id, stage),
    FOREIGN KEY (tenant_id, project_id) REFERENCES commissioning_projects (tenant_id, id),
    FOREIGN KEY (tenant_id, activity_id) REFERENCES activities (tenant_id, id)
);

-- Hours each participant gave to a linked activity.
CREATE TABLE commissioning_involvement_hours (
    tenant_id        uuid NOT NULL,
    organisation_id  uuid,
    involvement_id   uuid NOT NULL,
    participant_id   uuid NOT NULL,
    hours            numeric(6, 2) NOT NULL CHECK (hours > 0 AND hours <= 1000),
    PRIMARY KEY (tenant_id, involvement_id, participant_id),
    FOREIGN KEY (tenant_id, involvement_id) REFERENCES commissioning_involvement (tenant_id, id),
    FOREIGN KEY (tenant_id, participant_id) REFERENCES participants (tenant_id, id)
);

-- A monitoring visit: its report's day, and the revisit due six calendar months after it (the
-- same day of the month, or the month's last day when it has no such day: 31 August -> 28 or
-- 29 February); overdue from the day after.
CREATE TABLE commissioning_visits (
    tenant_id        uuid NOT NULL,
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    seq              bigint GENERATED ALWAYS AS IDENTITY,
    organisation_id  uuid,
    project_id       uuid NOT NULL,
    visited_on       date NOT NULL,
    report_on        date NOT NULL CHECK (report_on >= visited_on),
    revisit_due_on   date NOT NULL GENERATED ALWAYS AS ((report_on + interval '6 months')::date) STORED,
    status           text NOT NULL DEFAULT 'awaiting_revisit' CHECK (status IN ('awaiting_revisit', 'revisited')),
    revisited_on     date CHECK (revisited_on >= report_on),
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_by       uuid NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, project_id) REFERENCES commissioning_projects (tenant_id, id),
    CHECK ((status = 'revisited') = (revisited_on IS NOT NULL))
);
CREATE INDEX commissioning_visits_project ON commissioning_visits (tenant_id, project_id, seq);
CREATE INDEX commissioning_visits_awaiting ON commissioning_visits (tenant_id, revisit_due_on) WHERE status = 'awaiting_revisit';

CREATE TABLE commissioning_visitors (
    tenant_id        uuid NOT NULL,
    organisation_id  uuid,
    visit_id         uuid NOT NULL,
    participant_id   uuid NOT NULL,
    position         integer NOT NULL CHECK (position >= 0),
    PRIMARY KEY (tenant_id, visit_id, participant_id),
    FOREIGN KEY (tenant_id, visit_id) REFERENCES commissioning_visits (tenant_id, id),
    FOREIGN KEY (tenant_id, participant_id) REFERENCES participants (tenant_id, id)
);

-- A visit report's recommendations, and at the revisit what became of each, with the
-- provider's reason when it was not (fully) implemented.
CREATE TABLE commissioning_recommendations (
    tenant_id        uuid NOT NULL,
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    organisation_id  uuid,
    visit_id         uuid NOT NULL,
    position         integer NOT NULL CHECK (position >= 0),
    text             text NOT NULL CHECK (length(text) BETWEEN 1 AND 4000),
    priority         text NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
    outcome          text CHECK (outcome IN ('implemented', 'partly_implemented', 'not_implemented')),
    outcome_reason   text CHECK (length(outcome_reason) BETWEEN 1 AND 4000),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, visit_id, position),
    FOREIGN KEY (tenant_id, visit_id) REFERENCES commissioning_visits (tenant_id, id),
    CHECK (outcome_reason IS NULL OR outcome IS NOT NULL)
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['commissioning_projects', 'commissioning_young_commissioners', 'commissioning_involvement',
                             'commissioning_involvement_hours', 'commissioning_visits', 'commissioning_visitors',
                             'commissioning_recommendations']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (heard_row_visible(tenant_id, organisation_id)) '
                       'WITH CHECK (heard_row_visible(tenant_id, organisation_id))', t);
    END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE ON commissioning_projects, commissioning_visits, commissioning_recommendations TO heard_runtime;
-- A tender recorded again replaces its young commissioners.
GRANT SELECT, INSERT, DELETE ON commissioning_young_commissioners TO heard_runtime;
GRANT SELECT, INSERT ON commissioning_involvement, commissioning_involvement_hours, commissioning_visitors TO heard_runtime;
