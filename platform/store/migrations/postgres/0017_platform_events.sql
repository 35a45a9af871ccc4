-- Platform events (issue 6): the core's events (a document shared, two patients merged) and
-- plugins' own, in one ordered log that every replica reads with a cursor (the id). Writers
-- take one transaction-scoped advisory lock before inserting, so ids become visible in order
-- and a reader never steps past an event that commits later with a smaller id.
CREATE TABLE platform_event (
    id              BIGSERIAL PRIMARY KEY,
    topic           TEXT    NOT NULL,
    patient_id      TEXT,
    payload         TEXT    NOT NULL,
    published_at_us BIGINT  NOT NULL
);
CREATE INDEX platform_event_topic ON platform_event (topic, id);
