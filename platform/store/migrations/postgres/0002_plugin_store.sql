-- Plugin-scoped key-value store. The host, never the plugin, fills plugin_id, so a plugin can
-- only reach its own rows. patient_id is the regional patient id of an entry that is patient
-- data: reads and writes of such rows go through the access decision and the audit trail.
CREATE TABLE plugin_kv (
    plugin_id       TEXT    NOT NULL,
    key             TEXT    NOT NULL COLLATE "C",
    value           BYTEA   NOT NULL,
    patient_id      TEXT,
    updated_at_us   BIGINT  NOT NULL,
    PRIMARY KEY (plugin_id, key)
);
CREATE INDEX plugin_kv_patient ON plugin_kv (patient_id) WHERE patient_id IS NOT NULL;
