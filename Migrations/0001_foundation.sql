-- Heard's schema lives in this folder as numbered migrations: NNNN_short_name.sql.
--
-- * Append-only: once a migration is applied anywhere it is never edited or removed. Each file
--   is recorded in schema_migrations with the SHA-256 of its bytes, and `heard migrate` (and
--   start-up) refuses to run when an applied file has changed. Put changes in a new file.
-- * One transaction each: the migrator wraps every file in BEGIN ... COMMIT, so a file must
--   not contain its own transaction control (or statements that cannot run in a transaction,
--   such as CREATE INDEX CONCURRENTLY).
-- * Numbered in order: a new file takes the next version after the highest one.
--
-- The foundation only names the schema; the areas add their tables in later migrations.

COMMENT ON SCHEMA public IS 'Heard: the voice of children, young people and families';
