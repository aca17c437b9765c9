-- The annual complaint figures (GET /v1/reports/complaints) are counted as complaints change,
-- not by reading every complaint of the period on each request: one row per tenant, day of
-- receipt, figure, key and organisation (so a partner's key still sees only its own), kept by
-- statement triggers on complaints and their learning actions in the transaction that changes
-- them. A report sums a period's rows: about 20 per day, whatever the number of complaints.
CREATE TABLE complaint_figures (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    organisation_id  uuid,
    received_on      date NOT NULL,
    figure           text NOT NULL,
    key              text NOT NULL,
    count            bigint NOT NULL,
    UNIQUE NULLS NOT DISTINCT (tenant_id, received_on, figure, key, organisation_id)
);
CREATE INDEX complaint_figures_period ON complaint_figures (tenant_id, received_on);

-- The overdue list (GET /v1/complaints?overdue=true) pages, in order, the complaints whose
-- response clock runs (ComplaintList.running names the same states), not every complaint.
CREATE INDEX complaints_running ON complaints (tenant_id, seq, response_due_on)
    WHERE status IN ('received', 'acknowledged', 'investigating', 'panel_convened', 'panel_reported');

ALTER TABLE complaint_figures ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON complaint_figures
    USING (heard_row_visible(tenant_id, organisation_id)) WITH CHECK (heard_row_visible(tenant_id, organisation_id));
-- Written only by the triggers below, which run as the role that changes the complaint.
GRANT SELECT, INSERT, UPDATE ON complaint_figures TO heard_runtime;

-- What one complaint adds to the figures, as (figure, key) pairs: each is one row of one of the
-- report's tables; `working_days_<stage>` is the histogram a stage's median is read from. These
-- are the report's definitions (ComplaintReport reads them by name).
CREATE FUNCTION complaint_figure_keys(procedure text, stage integer, status text, outcome text, service_area text,
                                      categories text[], complainant_role text, advocacy_offered boolean,
                                      responded_on date[], on_time boolean[], working_days integer[], escalated_on date[])
    RETURNS TABLE (figure text, key text)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT 'total', 'all'
        UNION ALL SELECT 'procedure', procedure
        UNION ALL SELECT 'stage', stage::text
        UNION ALL SELECT 'status', status
        UNION ALL SELECT 'outcome', coalesce(outcome, CASE WHEN status IN ('withdrawn', 'closed') THEN 'withdrawn' ELSE 'pending' END)
        UNION ALL SELECT 'service_area', service_area
        UNION ALL SELECT DISTINCT 'category', category FROM unnest(categories) AS category
        UNION ALL SELECT 'responded', s::text FROM generate_series(1, 3) AS s WHERE responded_on[s] IS NOT NULL
        UNION ALL SELECT 'within_time', s::text FROM generate_series(1, 3) AS s WHERE on_time[s]
        UNION ALL SELECT 'working_days_' || s, working_days[s]::text FROM generate_series(1, 3) AS s WHERE working_days[s] IS NOT NULL
        UNION ALL SELECT 'escalated', s::text FROM generate_series(1, 2) AS s WHERE escalated_on[s] IS NOT NULL
        UNION ALL SELECT 'children', 'all' WHERE complainant_role IN ('child', 'young_person')
        UNION ALL SELECT 'advocacy', 'all' WHERE complainant_role IN ('child', 'young_person') AND advocacy_offered
    $$;

-- What one learning action adds: its status.
CREATE FUNCTION complaint_learning_figure_keys(status text) RETURNS TABLE (figure text, key text)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'learning', status $$;

-- The statement's changed rows (+1 each new row, -1 each old one) turned into figure deltas and
-- added in one upsert, in one order (so two transactions never wait on each other's rows in
-- opposite orders); a change that moves no figure touches no row.
CREATE FUNCTION complaint_figures_follow() RETURNS trigger
    LANGUAGE plpgsql
    AS $function$
    DECLARE
        changed text := CASE TG_OP
            WHEN 'INSERT' THEN 'SELECT n.*, 1 AS delta FROM new_rows AS n'
            WHEN 'DELETE' THEN 'SELECT o.*, -1 AS delta FROM old_rows AS o'
            ELSE 'SELECT n.*, 1 AS delta FROM new_rows AS n UNION ALL SELECT o.*, -1 AS delta FROM old_rows AS o'
        END;
        -- The changed row's day of receipt, and its figures.
        day text := CASE TG_TABLE_NAME WHEN 'complaints' THEN 'received_on' ELSE 'complaint_received_on' END;
        figures text := CASE TG_TABLE_NAME
            WHEN 'complaints' THEN 'complaint_figure_keys(c.procedure, c.stage, c.status, c.outcome, c.service_area, c.categories,
                                       c.complainant_role, c.advocacy_offered, c.stage_responded_on, c.stage_on_time,
                                       c.stage_working_days, c.stage_escalated_on)'
            ELSE 'complaint_learning_figure_keys(c.status)'
        END;
    BEGIN
        EXECUTE format($sql$
            INSERT INTO complaint_figures AS f (tenant_id, organisation_id, received_on, figure, key, count)
            SELECT c.tenant_id, c.organisation_id, c.%1$I, k.figure, k.key, sum(c.delta)
              FROM (%2$s) AS c, LATERAL %3$s AS k
             GROUP BY 1, 2, 3, 4, 5
            HAVING sum(c.delta) <> 0
             ORDER BY 1, 3, 4, 5, 2
            ON CONFLICT (tenant_id, received_on, figure, key, organisation_id) DO UPDATE SET count = f.count + excluded.count
            $sql$, day, changed, figures);
        RETURN NULL;
    END
    $function$;

CREATE TRIGGER figures_insert AFTER INSERT ON complaints REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION complaint_figures_follow();
CREATE TRIGGER figures_update AFTER UPDATE ON complaints REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION complaint_figures_follow();
CREATE TRIGGER figures_delete AFTER DELETE ON complaints REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION complaint_figures_follow();
CREATE TRIGGER figures_insert AFTER INSERT ON complaint_learning_actions REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION complaint_figures_follow();
CREATE TRIGGER figures_update AFTER UPDATE ON complaint_learning_actions REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION complaint_figures_follow();
CREATE TRIGGER figures_delete AFTER DELETE ON complaint_learning_actions REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION complaint_figures_follow();

-- The complaints recorded before this migration, counted once. The owner runs migrations and
-- row-level security is forced on it too: lifted for the count, so that it sees every
-- tenant's rows, and forced after.
ALTER TABLE complaints NO FORCE ROW LEVEL SECURITY;
ALTER TABLE complaint_learning_actions NO FORCE ROW LEVEL SECURITY;
INSERT INTO complaint_figures (tenant_id, organisation_id, received_on, figure, key, count)
SELECT c.tenant_id, c.organisation_id, c.received_on, k.figure, k.key, count(*)
  FROM complaints AS c,
       complaint_figure_keys(c.procedure, c.stage, c.status, c.outcome, c.service_area, c.categories, c.complainant_role,
                             c.advocacy_offered, c.stage_responded_on, c.stage_on_time, c.stage_working_days, c.stage_escalated_on) AS k
 GROUP BY 1, 2, 3, 4, 5;
INSERT INTO complaint_figures (tenant_id, organisation_id, received_on, figure, key, count)
SELECT c.tenant_id, c.organisation_id, c.complaint_received_on, k.figure, k.key, count(*)
  FROM complaint_learning_actions AS c, complaint_learning_figure_keys(c.status) AS k
 GROUP BY 1, 2, 3, 4, 5;
ALTER TABLE complaints FORCE ROW LEVEL SECURITY;
ALTER TABLE complaint_learning_actions FORCE ROW LEVEL SECURITY;
ALTER TABLE complaint_figures FORCE ROW LEVEL SECURITY;
