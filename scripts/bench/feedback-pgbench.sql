-- pgbench script for scripts/bench-feedback: the statements Heard runs for one
-- POST /v1/feedback that creates a record (a tenant-wide key, no organisation, no
-- Idempotency-Key, the tenant's measures already at hand: see MeasureCache), in the same
-- order, in the same round trips, as the same runtime role. The key is known in memory after its
-- first request (KeyCache), so authentication sends nothing; there is one round trip:
--   one pipeline ending in one sync, which is the transaction (PostgreSQL's implicit one:
--      PostgresPool.transaction sends a transaction whose first statement is its last as one
--      unit, with no BEGIN or COMMIT): the two transaction-local settings row-level security
--      reads (one statement), then the record with its responses, any alert and its audit row
--      in one statement that returns what the answer needs (FeedbackStore.create)
-- What pgbench cannot do is Heard's sharing of connections: Heard sends units from different
-- requests on one connection without waiting for the ones before to be answered (see
-- PostgresPool), while each pgbench client sends its next transaction only once its last is
-- answered, as a council system sends its next request.
-- Heard sends one parameter per value, and so does this script (pgbench -M prepared binds each
-- :variable as a parameter), so PostgreSQL plans both alike; only NULLs, which a pgbench
-- variable cannot hold, are written in place. Keep this file in step with FeedbackRoutes.create,
-- FeedbackStore.create, PostgresPool.transaction and AccessControl when they change.
-- Variables come from `pgbench -D` (see scripts/bench-feedback); `i` counts per client, so
-- external_id = client_id * 100000000 + i never repeats within a run.
\set i :i + 1
\set ext :client_id * 100000000 + :i
\startpipeline
SELECT set_config(:tenant_setting, :tenant, true), set_config(:organisation_setting, '', true);  -- a tenant-wide key: '' (pgbench -D cannot hold an empty value)
WITH new AS (
    INSERT INTO feedback (tenant_id, organisation_id, source_system, external_id, channel, respondent_role, age_band,
                          service_area, team, stage, kind, given_at, subject_ref, comment, anonymous,
                          consent_to_follow_up, safeguarding_concern, gender, ethnicity, disability, content_hash, created_by,
                          response_measures, response_versions, response_scores)
    VALUES (:tenant, NULL, :source_system, :ext, :channel,
            :respondent_role, :age_band, :service_area,
            :team, :stage, :kind, :given_at,
            :subject_ref, :comment, :no, :no,
            :no, :gender, :ethnicity,
            NULL, :content_hash, :key_id,
            :measure_ids, :measure_versions, :scores)
    ON CONFLICT (tenant_id, source_system, external_id) DO NOTHING
    RETURNING id, organisation_id, safeguarding_concern, given_at, version, created_at, updated_at
), alert AS (
    INSERT INTO safeguarding_alerts (tenant_id, feedback_id, organisation_id)
    SELECT :tenant, new.id, new.organisation_id FROM new WHERE new.safeguarding_concern
    RETURNING id, status
), audited AS (
    INSERT INTO audit_events (tenant_id, organisation_id, key_id, action, resource_type, resource_id, rows_exported, outcome, status, request_id)
    SELECT :tenant, NULL, :key_id, :action, :resource_type,
           new.id::text, NULL::integer, 'success', 200, :request_id
      FROM new
)
SELECT new.id, new.given_at, new.version, new.created_at, new.updated_at, o.slug AS organisation,
       alert.id AS alert_id, alert.status AS alert_status
  FROM new
  LEFT JOIN organisations o ON o.tenant_id = :tenant AND o.id = new.organisation_id
  LEFT JOIN alert ON true;
\endpipeline
