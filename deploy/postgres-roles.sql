-- Heard's runtime role, for a PostgreSQL that Heard does not start itself (docker-compose runs
-- this once, when the database volume is new). The owner is the database's owner (here
-- POSTGRES_USER); the service logs in as heard_app, a member of heard_runtime, which migration
-- 0002 grants exactly what the service needs. Change the password outside development.
CREATE ROLE heard_runtime NOLOGIN NOSUPERUSER NOBYPASSRLS;
CREATE ROLE heard_app LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD 'heard_app' IN ROLE heard_runtime;
