-- References to the rows that almost every write points at (the tenant; a measure's versions)
-- are checked once per statement instead of by foreign keys.
--
-- Why: a foreign key checks each new row on its own and locks the parent row it points at
-- (FOR KEY SHARE). Every feedback record, response and audit row points at the same tenant row
-- and the same few measure versions, so with writers in parallel each insert adds itself to a
-- multixact on those rows. Measured (scripts/bench-feedback, perf): the per-row checks were
-- about 40% of PostgreSQL's time storing a batch.
--
-- The guarantee stays whole: these parents are never deleted, and a measure version never
-- changes (new wording is a new version), so that is now enforced below; with parents that
-- cannot go away, "every referenced parent exists when the statement ends" is all a foreign
-- key would add. The checks run as the owner, so what a key may see does not matter, as for a
-- foreign key.

CREATE FUNCTION heard_refuse_removal() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'rows of % are never deleted or changed: records refer to them', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER tenants_are_kept BEFORE DELETE OR TRUNCATE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION heard_refuse_removal();
CREATE TRIGGER tenants_keep_their_id BEFORE UPDATE OF id ON tenants
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION heard_refuse_removal();
CREATE TRIGGER measure_versions_are_kept BEFORE UPDATE OR DELETE OR TRUNCATE ON measure_versions
    FOR EACH STATEMENT EXECUTE FUNCTION heard_refuse_removal();

-- Every tenant_id among the statement's new rows names a tenant (NULL is allowed where the
-- column allows it: an audit row for a key nobody could name).
CREATE FUNCTION heard_check_tenants_exist() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows n
                WHERE n.tenant_id IS NOT NULL
                  AND NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = n.tenant_id)) THEN
        RAISE EXCEPTION 'insert or update on table "%" refers to a tenant that does not exist', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;

-- Every response's (tenant_id, measure_id, measure_version) names a measure version.
CREATE FUNCTION heard_check_measure_versions_exist() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows n
                WHERE NOT EXISTS (SELECT 1 FROM measure_versions v
                                   WHERE v.tenant_id = n.tenant_id AND v.measure_id = n.measure_id
                                     AND v.version = n.measure_version)) THEN
        RAISE EXCEPTION 'insert or update on table "%" refers to a measure version that does not exist', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION heard_refuse_removal(), heard_check_tenants_exist(), heard_check_measure_versions_exist() FROM PUBLIC;

CREATE TRIGGER feedback_tenant_exists AFTER INSERT ON feedback
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION heard_check_tenants_exist();
CREATE TRIGGER feedback_tenant_still_exists AFTER UPDATE ON feedback
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION heard_check_tenants_exist();
CREATE TRIGGER audit_events_tenant_exists AFTER INSERT ON audit_events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION heard_check_tenants_exist();
CREATE TRIGGER feedback_responses_measure_version_exists AFTER INSERT ON feedback_responses
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION heard_check_measure_versions_exist();
CREATE TRIGGER feedback_responses_measure_version_still_exists AFTER UPDATE ON feedback_responses
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION heard_check_measure_versions_exist();

ALTER TABLE feedback DROP CONSTRAINT feedback_tenant_id_fkey;
ALTER TABLE audit_events DROP CONSTRAINT audit_events_tenant_id_fkey;
ALTER TABLE feedback_responses DROP CONSTRAINT feedback_responses_tenant_id_measure_id_measure_version_fkey;
