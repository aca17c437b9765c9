-- Participation (DOMAIN.md §5): the children, young people and family members who take part in
-- involvement work, their consent, groups, training and rewards, and the activities they join,
-- each on a rung of Hart's ladder. Pseudonymous references only: never a name or a contact
-- detail. Records a partner's key makes are its organisation's (heard_row_visible), the rows
-- that hang off a record share the record's organisation.

CREATE TABLE participants (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    seq              bigint GENERATED ALWAYS AS IDENTITY,
    organisation_id  uuid,
    -- The pseudonymous reference from the council's systems: the natural key.
    ref              text NOT NULL CHECK (length(ref) BETWEEN 1 AND 100),
    age_band         text NOT NULL,
    gender           text,
    ethnicity        text,
    disability       text,
    notes            text CHECK (length(notes) <= 4000),
    active           boolean NOT NULL DEFAULT true,
    content_hash     text NOT NULL,
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_by       uuid NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, ref),
    FOREIGN KEY (tenant_id, organisation_id) REFERENCES organisations (tenant_id, id)
);

-- Every correction of a participant: which fields, from what to what (never the notes).
CREATE TABLE participant_history (
    tenant_id        uuid NOT NULL,
    organisation_id  uuid,
    participant_id   uuid NOT NULL,
    version          integer NOT NULL CHECK (version >= 2),
    key_id           uuid NOT NULL,
    request_id       text NOT NULL,
    changes          jsonb NOT NULL,
    occurred_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, participant_id, version),
    FOREIGN KEY (tenant_id, participant_id) REFERENCES participants (tenant_id, id)
);

-- Consent: who gave it, from which day, for which purposes; withdrawn on a day, never deleted.
-- In force from given_on up to, not including, withdrawn_on.
CREATE TABLE consents (
    tenant_id        uuid NOT NULL,
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    organisation_id  uuid,
    participant_id   uuid NOT NULL,
    given_by         text NOT NULL,
    given_on         date NOT NULL,
    purposes         text[] NOT NULL CHECK (cardinality(purposes) >= 1),
    status           text NOT NULL DEFAULT 'given' CHECK (status IN ('given', 'withdrawn')),
    withdrawn_on     date CHECK (withdrawn_on >= given_on),
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_by       uuid NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, participant_id) REFERENCES participants (tenant_id, id),
    CHECK ((status = 'withdrawn') = (withdrawn_on IS NOT NULL))
);
CREATE INDEX consents_participant ON consents (tenant_id, participant_id);

CREATE TABLE participant_groups (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    seq              bigint GENERATED ALWAYS AS IDENTITY,
    organisation_id  uuid,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind             text NOT NULL,
    service_area     text,
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_by       uuid NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, organisation_id) REFERENCES organisations (tenant_id, id)
);

-- A participant's time in a group: joined on a day, left on a later one (a dated change).
CREATE TABLE group_memberships (
    tenant_id        uuid NOT NULL,
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    organisation_id  uuid,
    group_id         uuid NOT NULL,
    participant_id   uuid NOT NULL,
    joined_on        date NOT NULL,
    status           text NOT NULL DEFAULT 'member' CHECK (status IN ('member', 'left')),
    left_on          date CHECK (left_on >= joined_on),
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_by       uuid NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES participant_groups (tenant_id, id),
    FOREIGN KEY (tenant_id, participant_id) REFERENCES participants (tenant_id, id),
    CHECK ((status = 'left') = (left_on IS NOT NULL))
);
-- One open membership of a group per participant.
CREATE UNIQUE INDEX group_memberships_open ON group_memberships (tenant_id, group_id, participant_id) WHERE status = 'member';
CREATE INDEX group_memberships_participant ON group_memberships (tenant_id, participant_id);

-- A course completed; current from completed_on to expires_on, both included (none: no expiry).
CREATE TABLE training_records (
    tenant_id        uuid NOT NULL,
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    organisation_id  uuid,
    participant_id   uuid NOT NULL,
    course           text NOT NULL,
    completed_on     date NOT NULL,
    expires_on       date CHECK (expires_on >= completed_on),
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_by       uuid NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, participant_id) REFERENCES participants (tenant_id, id)
);
CREATE INDEX training_records_participant ON training_records (tenant_id, participant_id, course);

CREATE TABLE activities (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    seq              bigint GENERATED ALWAYS AS IDENTITY,
    organisation_id  uuid,
    kind             text NOT NULL,
    topic            text NOT NULL CHECK (topic ~ '^[a-z][a-z0-9_]{1,62}$'),
    service_area     text NOT NULL,
    held_on          date NOT NULL,
    harts_rung       integer NOT NULL CHECK (harts_rung BETWEEN 1 AND 8),
    group_id         uuid,
    summary          text CHECK (length(summary) <= 8000),
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_by       uuid NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, organisation_id) REFERENCES organisations (tenant_id, id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES participant_groups (tenant_id, id)
);
CREATE INDEX activities_held_on ON activities (tenant_id, held_on);

CREATE TABLE activity_participants (
    tenant_id        uuid NOT NULL,
    organisation_id  uuid,
    activity_id      uuid NOT NULL,
    participant_id   uuid NOT NULL,
    added_by         uuid NOT NULL,
    added_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, activity_id, participant_id),
    FOREIGN KEY (tenant_id, activity_id) REFERENCES activities (tenant_id, id),
    FOREIGN KEY (tenant_id, participant_id) REFERENCES participants (tenant_id, id)
);
CREATE INDEX activity_participants_participant ON activity_participants (tenant_id, participant_id);

-- Thanks and rewards, optionally for an activity.
CREATE TABLE rewards (
    tenant_id        uuid NOT NULL,
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    organisation_id  uuid,
    participant_id   uuid NOT NULL,
    kind             text NOT NULL,
    value_pence      integer CHECK (value_pence >= 0),
    given_on         date NOT NULL,
    activity_id      uuid,
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_by       uuid NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, participant_id) REFERENCES participants (tenant_id, id),
    FOREIGN KEY (tenant_id, activity_id) REFERENCES activities (tenant_id, id)
);
CREATE INDEX rewards_participant ON rewards (tenant_id, participant_id);

-- The tenant's settings (GET/PATCH /v1/admin/settings); a tenant without a row has the defaults.
CREATE TABLE tenant_settings (
    tenant_id                 uuid PRIMARY KEY REFERENCES tenants (id),
    fatigue_topic_days        integer NOT NULL DEFAULT 90 CHECK (fatigue_topic_days BETWEEN 1 AND 3650),
    fatigue_max_per_30_days   integer NOT NULL DEFAULT 4 CHECK (fatigue_max_per_30_days BETWEEN 1 AND 100),
    version                   integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    updated_at                timestamptz NOT NULL DEFAULT now()
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['participants', 'participant_history', 'consents', 'participant_groups', 'group_memberships',
                             'training_records', 'activities', 'activity_participants', 'rewards']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (heard_row_visible(tenant_id, organisation_id)) '
                       'WITH CHECK (heard_row_visible(tenant_id, organisation_id))', t);
    END LOOP;
END
$$;

ALTER TABLE tenant_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_settings
    USING (tenant_id = heard_current_tenant()) WITH CHECK (tenant_id = heard_current_tenant());

GRANT SELECT, INSERT, UPDATE ON participants, consents, participant_groups, group_memberships, activities, tenant_settings TO heard_runtime;
GRANT SELECT, INSERT ON participant_history, training_records, activity_participants, rewards TO heard_runtime;
