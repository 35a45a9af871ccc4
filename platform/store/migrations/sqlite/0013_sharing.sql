-- Sharing with consent (issue 5): care relationships, the patient's directives, emergency
-- access. Instants are microseconds since the Unix epoch, like the rest of the schema.

-- Care relationships declared by a professional or made by a referral. Relationships from
-- hospital encounters live in encounter_participant (written by the identity feed).
CREATE TABLE care_link (
    id              INTEGER PRIMARY KEY,
    regional_id     TEXT    NOT NULL,
    practitioner    TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    justification   TEXT    NOT NULL,
    referred_by     TEXT,
    start_us        INTEGER NOT NULL,
    end_us          INTEGER,
    created_by      TEXT    NOT NULL,
    created_at_us   INTEGER NOT NULL,
    ended_by        TEXT,
    ended_at_us     INTEGER
);
CREATE INDEX care_link_patient ON care_link (regional_id, practitioner);
CREATE INDEX care_link_practitioner ON care_link (practitioner, regional_id);

-- Doctors of a hospital encounter (ADT PV1-7 attending, PV1-8 referring, PV1-9 consulting,
-- PV1-17 admitting), keyed by the source record so that merges and links of the patient
-- follow without rewriting these rows.
CREATE TABLE encounter_participant (
    authority       TEXT    NOT NULL,
    visit_number    TEXT    NOT NULL,
    practitioner    TEXT    NOT NULL,
    role            TEXT    NOT NULL,
    local_id        TEXT    NOT NULL,
    start_us        INTEGER NOT NULL,
    end_us          INTEGER,
    updated_at_us   INTEGER NOT NULL,
    PRIMARY KEY (authority, visit_number, practitioner, role)
);
CREATE INDEX encounter_participant_source ON encounter_participant (authority, local_id);
CREATE INDEX encounter_participant_practitioner ON encounter_participant (practitioner);

-- The patient's directives: objection to sharing, objection to emergency access, explicit
-- consent to a professional, block of a professional, mask of a document. Revoked, never deleted.
CREATE TABLE consent_directive (
    id              INTEGER PRIMARY KEY,
    regional_id     TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    practitioner    TEXT,
    document_id     TEXT,
    start_us        INTEGER NOT NULL,
    end_us          INTEGER,
    note            TEXT    NOT NULL,
    recorded_by     TEXT    NOT NULL,
    recorded_at_us  INTEGER NOT NULL,
    revoked_by      TEXT,
    revoked_at_us   INTEGER
);
CREATE INDEX consent_directive_patient ON consent_directive (regional_id, revoked_at_us);

-- Emergency accesses ("bris de glace"): a reason, a limited duration, and the designated
-- officer's review.
CREATE TABLE emergency_access (
    id              INTEGER PRIMARY KEY,
    regional_id     TEXT    NOT NULL,
    practitioner    TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    start_us        INTEGER NOT NULL,
    end_us          INTEGER NOT NULL,
    declared_by     TEXT    NOT NULL,
    reviewed_by     TEXT,
    reviewed_at_us  INTEGER,
    review_note     TEXT
);
CREATE INDEX emergency_access_patient ON emergency_access (regional_id, practitioner);
CREATE INDEX emergency_access_review ON emergency_access (reviewed_at_us, id);

-- The access decision reads a patient's merge lineage (ids merged into it) on every request.
CREATE INDEX identity_patient_merged_into ON identity_patient (merged_into)
    WHERE merged_into IS NOT NULL;
