-- You said, we did (DOMAIN.md §6): what young people said, what was done about it, when they
-- were told, and the rounds of answers published for anyone to read.
CREATE TABLE you_said_items (
    tenant_id            uuid NOT NULL REFERENCES tenants (id),
    id                   uuid NOT NULL DEFAULT gen_random_uuid(),
    seq                  bigint GENERATED ALWAYS AS IDENTITY,
    organisation_id      uuid,
    said                 text NOT NULL CHECK (length(said) BETWEEN 1 AND 4000),
    theme                text NOT NULL CHECK (length(theme) BETWEEN 1 AND 100),
    service_area         text NOT NULL,
    raised_on            date NOT NULL,
    -- Where it came from: the tenant's feedback, complaints, activities and groups.
    feedback_ids         uuid[] NOT NULL DEFAULT '{}',
    complaint_ids        uuid[] NOT NULL DEFAULT '{}',
    activity_ids         uuid[] NOT NULL DEFAULT '{}',
    group_ids            uuid[] NOT NULL DEFAULT '{}',
    -- The answer.
    owner_team           text CHECK (length(owner_team) BETWEEN 1 AND 100),
    status               text NOT NULL DEFAULT 'planned' CHECK (status IN ('planned', 'in_progress', 'done', 'not_possible')),
    we_did               text CHECK (length(we_did) BETWEEN 1 AND 4000),
    reason_not_possible  text CHECK (length(reason_not_possible) BETWEEN 1 AND 4000),
    target_on            date,
    progress_percent     integer NOT NULL DEFAULT 0 CHECK (progress_percent BETWEEN 0 AND 100),
    -- When the answer (status, we_did, progress, a milestone done) last changed, and when
    -- young people were last told (the recording of it): due_feedback compares the two.
    answer_changed_at    timestamptz,
    last_told_at         timestamptz,
    version              integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_by           uuid NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, organisation_id) REFERENCES organisations (tenant_id, id),
    CHECK ((status = 'not_possible') = (reason_not_possible IS NOT NULL))
);
CREATE INDEX you_said_items_list ON you_said_items (tenant_id, seq DESC);

CREATE TABLE you_said_milestones (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    seq              bigint GENERATED ALWAYS AS IDENTITY,
    organisation_id  uuid,
    item_id          uuid NOT NULL,
    title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    due_on           date,
    done_on          date,
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, item_id) REFERENCES you_said_items (tenant_id, id)
);
CREATE INDEX you_said_milestones_of_item ON you_said_milestones (tenant_id, item_id, seq);

-- Each time young people were told about an item: appended, never changed.
CREATE TABLE you_said_feedback_given (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    seq              bigint GENERATED ALWAYS AS IDENTITY,
    organisation_id  uuid,
    item_id          uuid NOT NULL,
    given_on         date NOT NULL,
    how              text NOT NULL,
    group_ids        uuid[] NOT NULL DEFAULT '{}',
    participant_ids  uuid[] NOT NULL DEFAULT '{}',
    note             text CHECK (length(note) BETWEEN 1 AND 4000),
    key_id           uuid NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, item_id) REFERENCES you_said_items (tenant_id, id)
);
CREATE INDEX you_said_feedback_given_of_item ON you_said_feedback_given (tenant_id, item_id, seq);

-- The item's timeline, besides its status changes (in lifecycle_history): raised, answer
-- changes, milestones, feedback given, publication. Appended, never rewritten; free text only
-- in `free_text`, read with free_text:read.
CREATE TABLE you_said_events (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    seq              bigint GENERATED ALWAYS AS IDENTITY,
    organisation_id  uuid,
    item_id          uuid NOT NULL,
    kind             text NOT NULL,
    details          jsonb NOT NULL DEFAULT '{}',
    free_text        jsonb,
    key_id           uuid NOT NULL,
    request_id       text NOT NULL,
    occurred_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, seq),
    FOREIGN KEY (tenant_id, item_id) REFERENCES you_said_items (tenant_id, id)
);
CREATE INDEX you_said_events_of_item ON you_said_events (tenant_id, item_id, seq);

-- A round of answers a board published at once.
CREATE TABLE you_said_rounds (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    seq              bigint GENERATED ALWAYS AS IDENTITY,
    organisation_id  uuid,
    title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    published_on     date NOT NULL,
    item_ids         uuid[] NOT NULL,
    key_id           uuid NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

-- What each item looked like when a round published it: the public fields only, so the feed can
-- never show more, and shows this until a later round publishes the item again. Appended.
CREATE TABLE you_said_publications (
    tenant_id            uuid NOT NULL REFERENCES tenants (id),
    round_id             uuid NOT NULL,
    round_seq            bigint NOT NULL,
    item_id              uuid NOT NULL,
    organisation_id      uuid,
    item_version         integer NOT NULL,
    said                 text NOT NULL,
    we_did               text,
    theme                text NOT NULL,
    service_area         text NOT NULL,
    owner_team           text,
    status               text NOT NULL,
    progress_percent     integer NOT NULL,
    reason_not_possible  text,
    raised_on            date NOT NULL,
    target_on            date,
    round_title          text NOT NULL,
    published_on         date NOT NULL,
    published_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, round_id, item_id),
    FOREIGN KEY (tenant_id, round_id) REFERENCES you_said_rounds (tenant_id, id),
    FOREIGN KEY (tenant_id, item_id) REFERENCES you_said_items (tenant_id, id)
);
CREATE INDEX you_said_publications_latest ON you_said_publications (tenant_id, item_id, round_seq DESC);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['you_said_items', 'you_said_milestones', 'you_said_feedback_given', 'you_said_events',
                             'you_said_rounds', 'you_said_publications'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (heard_row_visible(tenant_id, organisation_id)) '
                       'WITH CHECK (heard_row_visible(tenant_id, organisation_id))', t);
    END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE ON you_said_items, you_said_milestones TO heard_runtime;
GRANT SELECT, INSERT ON you_said_feedback_given, you_said_events, you_said_rounds, you_said_publications TO heard_runtime;

-- The public feed (GET /v1/public/{tenant_slug}/you-said-we-did) has no key, so no tenant until
-- its slug is looked up. This function, as the owner (whose registry policy lets it read
-- `tenants`), answers only the id and name of the tenant with that slug; the feed then reads
-- you_said_publications as the runtime role in a transaction set to that tenant, so row-level
-- security holds as for any key, and the table it reads holds nothing but public fields.
CREATE FUNCTION heard_public_tenant(p_slug text)
    RETURNS TABLE (tenant_id uuid, name text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$ SELECT t.id, t.name FROM tenants t WHERE t.slug = p_slug $$;
REVOKE ALL ON FUNCTION heard_public_tenant(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION heard_public_tenant(text) TO heard_runtime;

-- The change feed (0014) reports each item's creation and every change to it.
SELECT heard_report_changes('you_said_items', 'you_said_item');
