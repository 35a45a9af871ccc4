-- The assigning authorities a system client may feed (issue 3): a hospital information system
-- registers patients under its own establishment's identifier domains only (PID-3 assigning
-- authority, FHIR identifier system). One row per (client, authority OID); no row, no feed.
CREATE TABLE oauth_client_authority (
    client_id   TEXT    NOT NULL REFERENCES oauth_client (id) ON DELETE CASCADE,
    authority   TEXT    NOT NULL,
    PRIMARY KEY (client_id, authority)
);
