-- Stored Idempotency-Key answers expire 8 days after they were made, for every tenant, busy or
-- idle. A claim treats an expired key as new (Idempotency.swift), and `heard serve` calls
-- heard_expire_idempotency_keys() every few minutes to delete expired rows of every tenant (the
-- service's own role sees only one tenant at a time). The owner's policy lets it see and delete
-- expired rows only.
DO $$
BEGIN
    EXECUTE format('CREATE POLICY owner_expiry ON idempotency_keys TO %I USING (created_at < now() - interval ''8 days'')', current_user);
END
$$;

CREATE FUNCTION heard_expire_idempotency_keys() RETURNS bigint
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        WITH expired AS (
            DELETE FROM idempotency_keys WHERE created_at < now() - interval '8 days' RETURNING 1
        )
        SELECT count(*) FROM expired
    $$;

REVOKE ALL ON FUNCTION heard_expire_idempotency_keys() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION heard_expire_idempotency_keys() TO heard_runtime;

CREATE INDEX idempotency_keys_expiry ON idempotency_keys (created_at);
