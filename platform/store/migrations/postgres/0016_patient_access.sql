-- Patients' own accounts (issue 5): a professional of the care team issues a one-time
-- activation code once the identity is checked (VALI or QUAL); the patient redeems it with
-- their birth date to create their account. Only the code's SHA-256 is kept.
CREATE TABLE patient_activation (
    code_hash       TEXT    PRIMARY KEY,
    regional_id     TEXT    NOT NULL,
    created_by      TEXT    NOT NULL,
    created_at_us   BIGINT  NOT NULL,
    expires_at_us   BIGINT  NOT NULL,
    used_at_us      BIGINT,
    account_id      TEXT
);
CREATE INDEX patient_activation_patient ON patient_activation (regional_id);
