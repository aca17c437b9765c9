-- Corrections to feedback keep their history: which fields changed, from what to what, by
-- which key and when. One row per version after the first.
CREATE TABLE feedback_history (
    tenant_id    uuid NOT NULL,
    feedback_id  uuid NOT NULL,
    version      integer NOT NULL CHECK (version >= 2),
    changed_at   timestamptz NOT NULL DEFAULT now(),
    key_id       uuid NOT NULL,
    request_id   text NOT NULL,
    -- {"field": {"from": <old>, "to": <new>}, ...}
    changes      jsonb NOT NULL,
    PRIMARY KEY (tenant_id, feedback_id, version),
    FOREIGN KEY (tenant_id, feedback_id) REFERENCES feedback (tenant_id, id)
);

ALTER TABLE feedback_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE feedback_history FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON feedback_history
    USING (tenant_id = heard_current_tenant()
           AND EXISTS (SELECT 1 FROM feedback f WHERE f.tenant_id = feedback_history.tenant_id AND f.id = feedback_history.feedback_id))
    WITH CHECK (tenant_id = heard_current_tenant());

-- History is appended, never rewritten; a correction replaces a record's scored responses.
GRANT SELECT, INSERT ON feedback_history TO heard_runtime;
GRANT DELETE ON feedback_responses TO heard_runtime;
