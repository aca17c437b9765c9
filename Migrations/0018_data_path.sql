-- Every change to api_keys (a revocation through the API or `heard keys revoke`, a deletion, by
-- any instance or by hand) notifies the channel heard_api_keys from the changing transaction, so
-- the notification reaches every listening instance when, and only if, the change commits. Each
-- instance keeps the keys that authenticated in memory and empties that cache when it hears it
-- (KeyCache). A new key needs no notification: nothing of it can be cached yet.
CREATE FUNCTION heard_api_keys_changed() RETURNS trigger
    LANGUAGE plpgsql SET search_path = public, pg_temp
    AS $$
    BEGIN
        PERFORM pg_notify('heard_api_keys', '');
        RETURN NULL;
    END
    $$;

CREATE TRIGGER api_keys_changed
    AFTER UPDATE OR DELETE OR TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION heard_api_keys_changed();
