-- A key minted through the API (`POST /v1/admin/keys`) is bound by the key that minted it
-- (`created_by`): it has at most its creator's scopes, expires no later than it, and is refused
-- once its creator (or any key up its chain) is revoked. The API checks the first two when it
-- mints and revokes the minted keys with their creator; authentication also follows the chain,
-- so a key minted before these checks, or revoked by other means, is bound all the same.
CREATE OR REPLACE FUNCTION heard_authenticate(p_key_id uuid, p_secret_hash text)
    RETURNS TABLE (key_id uuid, tenant_id uuid, organisation_id uuid, scopes text[], expires_on date, revoked boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        WITH RECURSIVE lineage AS (
            SELECT k.tenant_id, k.id, k.organisation_id, k.created_by, k.scopes, k.expires_on, k.revoked_at, 0 AS depth
              FROM api_keys k
             WHERE k.id = p_key_id AND k.secret_hash = p_secret_hash
            UNION ALL
            SELECT p.tenant_id, p.id, p.organisation_id, p.created_by, p.scopes, p.expires_on, p.revoked_at, l.depth + 1
              FROM lineage l
              JOIN api_keys p ON p.tenant_id = l.tenant_id AND p.id = l.created_by
             WHERE l.depth < 64
        )
        SELECT k.id, k.tenant_id, k.organisation_id,
               ARRAY(SELECT s FROM unnest(k.scopes) AS s
                      WHERE NOT EXISTS (SELECT 1 FROM lineage l WHERE l.depth > 0 AND NOT s = ANY (l.scopes))),
               (SELECT min(l.expires_on) FROM lineage l),
               (SELECT bool_or(l.revoked_at IS NOT NULL) FROM lineage l)
          FROM lineage k
         WHERE k.depth = 0
           AND k.id = p_key_id
    $$;

-- Finding the keys a key minted, to revoke them with it.
CREATE INDEX api_keys_by_creator ON api_keys (tenant_id, created_by) WHERE created_by IS NOT NULL;
