-- Complaints (DOMAIN.md §2): the statutory children's procedure and the corporate one, each a
-- set of timescales in working days. The statutory timescales are fixed by regulation and live
-- in the code's declaration; a tenant's corporate timescales may differ from the Code's, and
-- every change is kept as a version that applies to complaints received after the day of it.
CREATE TABLE complaint_procedure_versions (
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    procedure       text NOT NULL CHECK (procedure IN ('corporate')),
    version         integer NOT NULL CHECK (version >= 2),
    -- [{"stage": 1, "acknowledge_within": 5, "respond_within": 10, ...}, ...]: ComplaintProcedure.Stage
    stages          jsonb NOT NULL,
    -- Complaints received on or after this day follow this version.
    effective_from  date NOT NULL,
    key_id          uuid NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, procedure, version)
);

-- Reference numbers CMP-<year>-<n>: numbered from 1 each year within a tenant, never reused.
CREATE TABLE complaint_reference_counters (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    year       integer NOT NULL CHECK (year BETWEEN 1 AND 9999),
    last       integer NOT NULL CHECK (last >= 1),
    PRIMARY KEY (tenant_id, year)
);

CREATE TABLE complaints (
    tenant_id               uuid NOT NULL REFERENCES tenants (id),
    id                      uuid NOT NULL DEFAULT gen_random_uuid(),
    seq                     bigint GENERATED ALWAYS AS IDENTITY,
    organisation_id         uuid,
    source_system           text NOT NULL CHECK (length(source_system) BETWEEN 1 AND 100),
    external_id             text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 200),
    reference               text NOT NULL,
    procedure               text NOT NULL CHECK (procedure IN ('statutory_children_act', 'corporate')),
    -- The procedure's stages as they applied when the complaint was received.
    timescales              jsonb NOT NULL,
    received_on             date NOT NULL,
    complainant_role        text NOT NULL,
    subject_ref             text CHECK (length(subject_ref) BETWEEN 1 AND 100),
    service_area            text NOT NULL,
    team                    text CHECK (length(team) BETWEEN 1 AND 100),
    categories              text[] NOT NULL,
    summary                 text CHECK (length(summary) <= 8000),
    matter_date             date,
    late_acceptance_reason  text CHECK (length(late_acceptance_reason) BETWEEN 1 AND 2000),
    advocacy_offered        boolean,
    stage                   integer NOT NULL DEFAULT 1 CHECK (stage BETWEEN 1 AND 3),
    status                  text NOT NULL,
    -- The current stage (ComplaintClock): the day it began (receipt, or the escalation request),
    -- the day its response clock started (null until it does: at corporate stages the
    -- acknowledgement, at statutory stage 2 the agreed statement), its acknowledgement, its
    -- allowance in working days, the day its clock was suspended (null while it runs).
    stage_started_on        date NOT NULL,
    clock_started_on        date,
    acknowledged_on         date,
    allowance               integer NOT NULL CHECK (allowance >= 1),
    suspended_on            date,
    -- Working days the current stage's clock has been suspended, over its closed suspensions.
    suspended_days          integer NOT NULL DEFAULT 0 CHECK (suspended_days >= 0),
    -- Stage 3's panel and its report; the current stage's response and its outcome.
    panel_on                date,
    panel_report_on         date,
    responded_on            date,
    outcome                 text,
    -- What the annual report counts, by stage (subscripts 1 to 3), written by the transitions:
    -- the day of the stage's response, whether it was within time, the working days it took,
    -- and the day the next stage was asked for. (The history holds the same; the report reads
    -- these, in one pass over the complaints.)
    stage_responded_on      date[] NOT NULL DEFAULT '{}',
    stage_on_time           boolean[] NOT NULL DEFAULT '{}',
    stage_working_days      integer[] NOT NULL DEFAULT '{}',
    stage_escalated_on      date[] NOT NULL DEFAULT '{}',
    -- The current stage's due dates, as last worked out (the list filters on them).
    acknowledge_due_on      date,
    response_due_on         date,
    panel_due_on            date,
    panel_report_due_on     date,
    content_hash            text NOT NULL,
    version                 integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_by              uuid NOT NULL,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, source_system, external_id),
    UNIQUE (tenant_id, reference),
    FOREIGN KEY (tenant_id, organisation_id) REFERENCES organisations (tenant_id, id)
);
CREATE INDEX complaints_tenant_seq ON complaints (tenant_id, seq);
CREATE INDEX complaints_tenant_received ON complaints (tenant_id, received_on);
CREATE INDEX complaints_tenant_response_due ON complaints (tenant_id, response_due_on) WHERE response_due_on IS NOT NULL;

ALTER TABLE complaint_procedure_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE complaint_procedure_versions FORCE ROW LEVEL SECURITY;
ALTER TABLE complaint_reference_counters ENABLE ROW LEVEL SECURITY;
ALTER TABLE complaint_reference_counters FORCE ROW LEVEL SECURITY;
ALTER TABLE complaints ENABLE ROW LEVEL SECURITY;
ALTER TABLE complaints FORCE ROW LEVEL SECURITY;

-- Procedures and reference numbers are the council's, whoever records a complaint.
CREATE POLICY tenant_isolation ON complaint_procedure_versions
    USING (tenant_id = heard_current_tenant()) WITH CHECK (tenant_id = heard_current_tenant());
CREATE POLICY tenant_isolation ON complaint_reference_counters
    USING (tenant_id = heard_current_tenant()) WITH CHECK (tenant_id = heard_current_tenant());
CREATE POLICY tenant_isolation ON complaints
    USING (heard_row_visible(tenant_id, organisation_id)) WITH CHECK (heard_row_visible(tenant_id, organisation_id));

GRANT SELECT, INSERT ON complaint_procedure_versions TO heard_runtime;
GRANT SELECT, INSERT, UPDATE ON complaint_reference_counters TO heard_runtime;
GRANT SELECT, INSERT, UPDATE ON complaints TO heard_runtime;

-- An action's narrative (its note, a reason given in words) is kept beside its history row's
-- details, and read only with free_text:read.
ALTER TABLE lifecycle_history ADD COLUMN free_text jsonb;

-- What a council learned from a complaint and does about it (DOMAIN.md §2).
CREATE TABLE complaint_learning_actions (
    tenant_id        uuid NOT NULL,
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    seq              bigint GENERATED ALWAYS AS IDENTITY,
    complaint_id     uuid NOT NULL,
    -- The complaint's, so the report counts a period's learning actions without a join.
    complaint_received_on date NOT NULL,
    organisation_id  uuid,
    action           text NOT NULL CHECK (length(action) BETWEEN 1 AND 2000),
    owner_team       text CHECK (length(owner_team) BETWEEN 1 AND 100),
    due_on           date,
    status           text NOT NULL CHECK (status IN ('planned', 'in_progress', 'done')),
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_by       uuid NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, complaint_id) REFERENCES complaints (tenant_id, id)
);
CREATE INDEX complaint_learning_actions_complaint ON complaint_learning_actions (tenant_id, complaint_id, seq);
CREATE INDEX complaint_learning_actions_received ON complaint_learning_actions (tenant_id, complaint_received_on);

ALTER TABLE complaint_learning_actions ENABLE ROW LEVEL SECURITY;
ALTER TABLE complaint_learning_actions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON complaint_learning_actions
    USING (heard_row_visible(tenant_id, organisation_id)) WITH CHECK (heard_row_visible(tenant_id, organisation_id));
GRANT SELECT, INSERT, UPDATE ON complaint_learning_actions TO heard_runtime;

-- The complainant's experience of the procedure, after closure, is feedback linked to it.
ALTER TABLE feedback ADD COLUMN complaint_id uuid;
ALTER TABLE feedback ADD CONSTRAINT feedback_complaint FOREIGN KEY (tenant_id, complaint_id) REFERENCES complaints (tenant_id, id);
