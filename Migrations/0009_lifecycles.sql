-- Lifecycles (safeguarding alerts now; complaints, "you said, we did" and commissioning to
-- come) keep one shape of history: every action, from which state to which, with the fields
-- it carried (never free text), by which key, in which request. The row is written by the same
-- statement that moves the record's state (Lifecycle.apply), so there is never one without
-- the other.
CREATE TABLE lifecycle_history (
    tenant_id        uuid NOT NULL,
    organisation_id  uuid,
    resource_type    text NOT NULL,
    resource_id      uuid NOT NULL,
    -- The record's version after the action.
    version          integer NOT NULL CHECK (version >= 2),
    action           text NOT NULL,
    from_state       text NOT NULL,
    to_state         text NOT NULL,
    details          jsonb NOT NULL DEFAULT '{}',
    key_id           uuid NOT NULL,
    request_id       text NOT NULL,
    occurred_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, resource_type, resource_id, version)
);

ALTER TABLE lifecycle_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON lifecycle_history
    USING (heard_row_visible(tenant_id, organisation_id)) WITH CHECK (heard_row_visible(tenant_id, organisation_id));
-- Appended, never rewritten.
GRANT SELECT, INSERT ON lifecycle_history TO heard_runtime;

-- An alert has versions, so its acknowledgement can be conditional (If-Match) like any change.
ALTER TABLE safeguarding_alerts ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1);
-- Alerts acknowledged before lifecycles kept their history only in their columns: give each
-- its history row and its second version. The owner runs migrations and row-level security is
-- forced on it too: lifted for the move, so that it sees every tenant's rows, and forced after.
ALTER TABLE safeguarding_alerts NO FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_events NO FORCE ROW LEVEL SECURITY;
INSERT INTO lifecycle_history (tenant_id, organisation_id, resource_type, resource_id, version, action, from_state, to_state,
                               details, key_id, request_id, occurred_at)
SELECT a.tenant_id, a.organisation_id, 'safeguarding_alert', a.id, 2, 'acknowledge', 'open', 'acknowledged',
       jsonb_build_object('acknowledged_by', a.acknowledged_by),
       coalesce((SELECT e.key_id FROM audit_events e
                  WHERE e.tenant_id = a.tenant_id AND e.resource_type = 'safeguarding_alert' AND e.resource_id = a.id::text
                    AND e.action = 'update' AND e.outcome = 'success' ORDER BY e.id LIMIT 1),
                '00000000-0000-0000-0000-000000000000'),
       'migration-0009', coalesce(a.acknowledged_at, now())
  FROM safeguarding_alerts a
 WHERE a.status = 'acknowledged';
UPDATE safeguarding_alerts SET version = 2 WHERE status = 'acknowledged';
ALTER TABLE safeguarding_alerts FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
ALTER TABLE lifecycle_history FORCE ROW LEVEL SECURITY;
