-- The rows `events` held before 0021 checked against its new constraints: VALIDATE CONSTRAINT
-- takes only a SHARE UPDATE EXCLUSIVE lock, so writes, and the change feed's readers, carry on
-- while it reads the table. (Every row passes: the old constraints took exactly these rows.)
ALTER TABLE events VALIDATE CONSTRAINT events_resource_check;
ALTER TABLE events VALIDATE CONSTRAINT events_type_check;
