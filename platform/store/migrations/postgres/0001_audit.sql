-- Audit trail: append-only, hash-chained records and signed checkpoints of the chain head.
-- Kept in lockstep with migrations/sqlite/0001_audit.sql (checked by a test).
CREATE TABLE audit_record (
    seq                 BIGINT  PRIMARY KEY,
    recorded_at_us      BIGINT  NOT NULL,
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
    prev_hash           BYTEA   NOT NULL,
    hash                BYTEA   NOT NULL
);
CREATE INDEX audit_record_patient ON audit_record (patient_id, seq);

CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT  NOT NULL,
    hash BYTEA   NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

CREATE TABLE audit_checkpoint (
    id              BIGSERIAL PRIMARY KEY,
    seq             BIGINT  NOT NULL,
    head_hash       BYTEA   NOT NULL,
    signed_at_us    BIGINT  NOT NULL,
    key_id          TEXT    NOT NULL,
    prev_signature  BYTEA,
    signature       BYTEA   NOT NULL
);
-- Verification looks up each line of the checkpoint file by its signature.
CREATE UNIQUE INDEX audit_checkpoint_signature ON audit_checkpoint (signature);
