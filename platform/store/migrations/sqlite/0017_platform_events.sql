-- Platform events (issue 6): the core's events (a document shared, two patients merged) and
-- plugins' own, in one ordered log that readers follow with a cursor (the id). SQLite has one
-- writer at a time, so ids become visible in order.
CREATE TABLE platform_event (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    topic           TEXT    NOT NULL,
    patient_id      TEXT,
    payload         TEXT    NOT NULL,
    published_at_us BIGINT  NOT NULL
);
CREATE INDEX platform_event_topic ON platform_event (topic, id);
