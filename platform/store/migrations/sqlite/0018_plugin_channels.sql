-- Frames of plugin WebSocket channels too large for a NOTIFY payload. Only the PostgreSQL bus
-- (several replicas) uses this table; it exists on SQLite too so both schemas stay the same.
-- (0017 is taken by another change.)
CREATE TABLE plugin_channel_message (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    envelope        BLOB    NOT NULL,
    created_at_us   INTEGER NOT NULL
);
CREATE INDEX plugin_channel_message_created ON plugin_channel_message (created_at_us);
