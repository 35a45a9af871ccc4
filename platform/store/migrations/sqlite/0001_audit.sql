-- Audit trail: append-only, hash-chained records and signed checkpoints of the chain head.
-- Times are microseconds since the Unix epoch (UTC) so that both databases store and sort them
-- the same way. Hashes and signatures are raw bytes.
CREATE TABLE audit_record (
    seq                 INTEGER PRIMARY KEY,
    recorded_at_us      INTEGER NOT NULL,
    actor_subject       TEXT    NOT NULL,
    actor_national_id   TEXT,
    actor_organisation  TEXT,
    actor_roles         TEXT    NOT NULL,
    action              TEXT    NOT NULL,
    object_type         TEXT    NOT NULL,
    object_id           TEXT,
    patient_id          TEXT,
    purpose             TEXT,
    outcome             TEXT    NOT NULL,
    source_address      TEXT,
    request_id          TEXT,
    detail              TEXT,
    prev_hash           BLOB    NOT NULL,
    hash                BLOB    NOT NULL
);
CREATE INDEX audit_record_patient ON audit_record (patient_id, seq);

-- One row: the sequence number and hash of the last record. Writers lock it to append.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash BLOB    NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, zeroblob(32));

CREATE TABLE audit_checkpoint (
    id              INTEGER PRIMARY KEY,
    seq             INTEGER NOT NULL,
    head_hash       BLOB    NOT NULL,
    signed_at_us    INTEGER NOT NULL,
    key_id          TEXT    NOT NULL,
    prev_signature  BLOB,
    signature       BLOB    NOT NULL
);
-- Verification looks up each line of the checkpoint file by its signature.
CREATE UNIQUE INDEX audit_checkpoint_signature ON audit_checkpoint (signature);
