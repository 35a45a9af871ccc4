-- Regional patient identity (master patient index), issue 4.
-- Golden records (identity_patient) are derived from the source records linked to them and
-- rebuilt on every change; source records keep every version in identity_source_history.
-- Times are microseconds since the Unix epoch; records and golden views are JSON documents.
CREATE TABLE identity_patient (
    regional_id     TEXT    PRIMARY KEY,
    seq             INTEGER NOT NULL UNIQUE,
    status          TEXT    NOT NULL,
    golden          TEXT    NOT NULL,
    merged_into     TEXT,
    created_at_us   INTEGER NOT NULL,
    updated_at_us   INTEGER NOT NULL
);

-- One row: the last regional sequence number. Identity writers lock it, which serialises
-- matching decisions (two records of one new patient arriving at once must not both create one).
CREATE TABLE identity_counter (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL
);
INSERT INTO identity_counter (id, seq) VALUES (1, 0);

CREATE TABLE identity_source (
    authority       TEXT    NOT NULL,
    local_id        TEXT    NOT NULL,
    regional_id     TEXT    NOT NULL REFERENCES identity_patient (regional_id),
    ins             TEXT,
    status          TEXT    NOT NULL,
    record          TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    updated_at_us   INTEGER NOT NULL,
    PRIMARY KEY (authority, local_id)
);
CREATE INDEX identity_source_patient ON identity_source (regional_id);
CREATE INDEX identity_source_ins ON identity_source (ins);

CREATE TABLE identity_source_history (
    authority       TEXT    NOT NULL,
    local_id        TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    regional_id     TEXT    NOT NULL,
    record          TEXT    NOT NULL,
    change          TEXT    NOT NULL,
    changed_at_us   INTEGER NOT NULL,
    PRIMARY KEY (authority, local_id, version)
);

-- Blocking keys of each source record (see megalis_identity::matching::blocking).
CREATE TABLE identity_match_key (
    match_key       TEXT    NOT NULL,
    authority       TEXT    NOT NULL,
    local_id        TEXT    NOT NULL,
    PRIMARY KEY (match_key, authority, local_id)
);
CREATE INDEX identity_match_key_source ON identity_match_key (authority, local_id);

-- Possible duplicates waiting for a person: a source record and a candidate patient.
CREATE TABLE identity_review (
    id                      INTEGER PRIMARY KEY,
    authority               TEXT    NOT NULL,
    local_id                TEXT    NOT NULL,
    candidate_regional_id   TEXT    NOT NULL,
    score                   REAL    NOT NULL,
    levels                  TEXT    NOT NULL,
    reason                  TEXT    NOT NULL,
    state                   TEXT    NOT NULL,
    created_at_us           INTEGER NOT NULL,
    resolved_at_us          INTEGER,
    resolved_by             TEXT
);
CREATE INDEX identity_review_state ON identity_review (state, id);

-- Pairs of patients a person declared distinct: never proposed again.
CREATE TABLE identity_distinct (
    regional_id_a   TEXT    NOT NULL,
    regional_id_b   TEXT    NOT NULL,
    decided_at_us   INTEGER NOT NULL,
    decided_by      TEXT    NOT NULL,
    PRIMARY KEY (regional_id_a, regional_id_b)
);

-- Merges, with what is needed to undo them: the source records that moved.
CREATE TABLE identity_merge (
    id              INTEGER PRIMARY KEY,
    survivor        TEXT    NOT NULL,
    merged          TEXT    NOT NULL,
    moved_sources   TEXT    NOT NULL,
    merged_at_us    INTEGER NOT NULL,
    merged_by       TEXT    NOT NULL,
    unmerged_at_us  INTEGER,
    unmerged_by     TEXT
);
CREATE INDEX identity_merge_merged ON identity_merge (merged);

-- HL7 v2 messages applied, by sender and control id (MSH-10): a redelivery is answered with the
-- stored acknowledgement and not applied twice.
CREATE TABLE identity_hl7_message (
    sender          TEXT    NOT NULL,
    control_id      TEXT    NOT NULL,
    received_at_us  INTEGER NOT NULL,
    ack             TEXT    NOT NULL,
    PRIMARY KEY (sender, control_id)
);
