-- pgbench script for scripts/bench-feedback: the statements Heard runs for one
-- POST /v1/feedback that creates a record (a tenant-wide key, no organisation, no
-- Idempotency-Key), in the same order, as the same runtime role:
--   1. authentication, on its own (AccessControl.authenticate)
--   2. BEGIN and the two transaction-local settings row-level security reads (PostgresPool.transaction)
--   3. the tenant's measures (MeasureStore.all)
--   4. the record, its responses and any alert, in one statement (FeedbackStore.store)
--   5. the record read back with its responses (FeedbackStore.find: recordSelect without
--      free_text:read, so `NULL::text AS comment`, and responses(of: [id]))
--   6. the audit row (AuditTrail.record), COMMIT
-- Heard sends one parameter per value; here the literal values of the benchmark's body stand in
-- for them. responses(of: [id]) compares the one id with `=`, as here. Keep this file in step with
-- FeedbackRoutes.create, FeedbackStore.store/find, MeasureStore.all and AccessControl when they
-- change.
-- Variables come from `pgbench -D` (see scripts/bench-feedback); `i` counts per client, so
-- external_id = client_id * 100000000 + i never repeats within a run.
\set i :i + 1
\set ext :client_id * 100000000 + :i
SELECT key_id, tenant_id, organisation_id, scopes, expires_on, revoked FROM heard_authenticate(:key_id, :secret_hash);
BEGIN;
SELECT set_config(:tenant_setting, :tenant, true);
SELECT set_config(:organisation_setting, '', true);  -- a tenant-wide key: '' (pgbench -D cannot hold an empty value)
SELECT m.id, m.code, m.measure_group, m.active, v.version, v.wording, v.scale_min, v.scale_max, v.agree_from, v.labels
  FROM measures m
  JOIN measure_versions v ON v.tenant_id = m.tenant_id AND v.measure_id = m.id AND v.version = m.current_version
 WHERE m.tenant_id = :tenant
 ORDER BY m.code;
WITH new AS (
    INSERT INTO feedback (tenant_id, organisation_id, source_system, external_id, channel, respondent_role, age_band,
                          service_area, team, stage, kind, given_at, subject_ref, comment, anonymous,
                          consent_to_follow_up, safeguarding_concern, gender, ethnicity, disability, content_hash, created_by)
    VALUES (:tenant, NULL, 'pgbench', :ext, 'cic_review',
            'young_person', '13_to_15', 'children_looked_after',
            'north', 'review', 'compliment', '2026-11-20T10:00:00.000000Z',
            'P-88213', 'My worker listens to me', false, false,
            false, 'female', 'white_british',
            NULL, :content_hash, :key_id)
    ON CONFLICT (tenant_id, source_system, external_id) DO NOTHING
    RETURNING id, organisation_id, safeguarding_concern
), responses AS (
    INSERT INTO feedback_responses (tenant_id, feedback_id, measure_id, measure_version, score)
    SELECT :tenant, new.id, r.measure_id, r.measure_version, r.score
      FROM new, unnest(:measure_ids::uuid[], :measure_versions::int[],
                       :scores::int[]) AS r (measure_id, measure_version, score)
), alert AS (
    INSERT INTO safeguarding_alerts (tenant_id, feedback_id, organisation_id)
    SELECT :tenant, new.id, new.organisation_id FROM new WHERE new.safeguarding_concern
)
SELECT id FROM new
\gset
SELECT f.seq, f.id, f.source_system, f.external_id, f.channel, f.respondent_role, f.age_band, f.service_area, f.team,
       f.stage, f.kind, f.given_at, f.subject_ref, NULL::text AS comment,
       f.anonymous, f.consent_to_follow_up, f.safeguarding_concern, f.gender, f.ethnicity, f.disability, f.version,
       f.created_at, f.updated_at, f.content_hash, o.slug AS organisation, a.id AS alert_id, a.status AS alert_status
  FROM feedback f
  LEFT JOIN organisations o ON o.tenant_id = f.tenant_id AND o.id = f.organisation_id
  LEFT JOIN safeguarding_alerts a ON a.tenant_id = f.tenant_id AND a.feedback_id = f.id
 WHERE f.tenant_id = :tenant AND f.id = :id;
SELECT r.feedback_id, m.code, r.score, r.measure_version, v.wording, r.score >= v.agree_from AS agrees
  FROM feedback_responses r
  JOIN measures m ON m.tenant_id = r.tenant_id AND m.id = r.measure_id
  JOIN measure_versions v ON v.tenant_id = r.tenant_id AND v.measure_id = r.measure_id AND v.version = r.measure_version
 WHERE r.tenant_id = :tenant AND r.feedback_id = :id
 ORDER BY m.code;
INSERT INTO audit_events (tenant_id, organisation_id, key_id, action, resource_type, resource_id,
                          rows_exported, outcome, status, request_id)
VALUES (:tenant, NULL, :key_id, 'create',
        'feedback', :id, NULL, 'success',
        200, :request_id);
COMMIT;
