-- Directory of health professionals (issue 3), fed by the Annuaire Santé extraction.
-- Kept in lockstep with migrations/sqlite/0003_directory.sql (checked by a test).
-- Every entity carries a content hash (first 8 bytes of SHA-256 of its fields, as a signed
-- integer) so that re-importing the same file rewrites nothing, and the id of the last import
-- that saw it, so that what a newer file no longer lists can be closed. Times are microseconds
-- since the Unix epoch (UTC). Rows are never deleted: a closed entry stays, inactive, with the
-- time it was closed.

CREATE TABLE dir_import (
    id              BIGSERIAL PRIMARY KEY,
    started_at_us   BIGINT  NOT NULL,
    finished_at_us  BIGINT ,
    source          TEXT    NOT NULL,
    summary         TEXT
);

CREATE TABLE dir_practitioner (
    national_id             TEXT    PRIMARY KEY,
    id_kind                 TEXT    NOT NULL,
    identifier              TEXT    NOT NULL,
    practice_civility_code  TEXT    NOT NULL,
    practice_civility_label TEXT    NOT NULL,
    civility_code           TEXT    NOT NULL,
    civility_label          TEXT    NOT NULL,
    family_name             TEXT    NOT NULL,
    given_name              TEXT    NOT NULL,
    family_fold             TEXT    NOT NULL,
    given_fold              TEXT    NOT NULL,
    profession_code         TEXT    NOT NULL,
    profession_label        TEXT    NOT NULL,
    category_code           TEXT    NOT NULL,
    category_label          TEXT    NOT NULL,
    mssante_address         TEXT,
    content_hash            BIGINT  NOT NULL,
    active                  BOOLEAN NOT NULL,
    created_at_us           BIGINT  NOT NULL,
    updated_at_us           BIGINT  NOT NULL,
    closed_at_us            BIGINT ,
    last_seen_import        BIGINT  NOT NULL
);
CREATE INDEX dir_practitioner_family ON dir_practitioner (family_fold);
CREATE INDEX dir_practitioner_given ON dir_practitioner (given_fold);
CREATE INDEX dir_practitioner_identifier ON dir_practitioner (identifier);
CREATE INDEX dir_practitioner_updated ON dir_practitioner (updated_at_us);

CREATE TABLE dir_organisation (
    structure_id        TEXT    PRIMARY KEY,
    siret               TEXT,
    siren               TEXT,
    finess_site         TEXT,
    finess_legal        TEXT,
    name                TEXT    NOT NULL,
    name_fold           TEXT    NOT NULL,
    trade_name          TEXT,
    address_lines       TEXT    NOT NULL,
    district            TEXT,
    postal_code         TEXT,
    commune_code        TEXT,
    city                TEXT,
    country_code        TEXT,
    country             TEXT,
    phone               TEXT,
    phone2              TEXT,
    fax                 TEXT,
    email               TEXT,
    department_code     TEXT    NOT NULL,
    department_label    TEXT    NOT NULL,
    sector_code         TEXT    NOT NULL,
    sector_label        TEXT    NOT NULL,
    content_hash        BIGINT  NOT NULL,
    active              BOOLEAN NOT NULL,
    created_at_us       BIGINT  NOT NULL,
    updated_at_us       BIGINT  NOT NULL,
    closed_at_us        BIGINT ,
    last_seen_import    BIGINT  NOT NULL
);
CREATE INDEX dir_organisation_finess ON dir_organisation (finess_site);
CREATE INDEX dir_organisation_siret ON dir_organisation (siret);
CREATE INDEX dir_organisation_name ON dir_organisation (name_fold);

CREATE TABLE dir_activity (
    activity_id             TEXT    PRIMARY KEY,
    national_id             TEXT    NOT NULL,
    structure_id            TEXT,
    profession_code         TEXT    NOT NULL,
    profession_label        TEXT    NOT NULL,
    specialty_kind_code     TEXT    NOT NULL,
    specialty_kind_label    TEXT    NOT NULL,
    specialty_code          TEXT    NOT NULL,
    specialty_label         TEXT    NOT NULL,
    mode_code               TEXT,
    mode_label              TEXT    NOT NULL,
    pharmacist_section_code TEXT    NOT NULL,
    pharmacist_section_label TEXT   NOT NULL,
    registration_authority  TEXT,
    content_hash            BIGINT  NOT NULL,
    active                  BOOLEAN NOT NULL,
    created_at_us           BIGINT  NOT NULL,
    updated_at_us           BIGINT  NOT NULL,
    closed_at_us            BIGINT ,
    last_seen_import        BIGINT  NOT NULL
);
CREATE INDEX dir_activity_practitioner ON dir_activity (national_id);
CREATE INDEX dir_activity_organisation ON dir_activity (structure_id);
CREATE INDEX dir_activity_specialty ON dir_activity (specialty_code);
