// Postgres binds and decodes `date` as CalendarDate and `timestamptz` through Timestamp, and
// checksums migrations with SHA256. Those value types live in HeardCore; re-exported, they are
// in scope wherever Postgres is imported, as they were when they lived here.
@_exported import HeardCore
