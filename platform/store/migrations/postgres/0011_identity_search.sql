-- Search columns of regional patients (issue 4: FHIR Patient search, the portal's patient
-- search). Derived from the golden record each time it is rebuilt, normalised the way the
-- matcher normalises names (upper-case ASCII letters, words joined: "Le Goff", "LE GOFF" and
-- "legoff" are one key), so that a prefix search is an index range scan (byte order: COLLATE "C").
ALTER TABLE identity_patient ADD COLUMN birth_name_key TEXT COLLATE "C";
ALTER TABLE identity_patient ADD COLUMN used_name_key TEXT COLLATE "C";
-- The birth and used first names as words, each preceded by a space: ' JEAN PIERRE MARIE'.
ALTER TABLE identity_patient ADD COLUMN given_key TEXT COLLATE "C";
ALTER TABLE identity_patient ADD COLUMN birth_date TEXT COLLATE "C";
ALTER TABLE identity_patient ADD COLUMN gender TEXT;
CREATE INDEX identity_patient_birth_name ON identity_patient (birth_name_key);
CREATE INDEX identity_patient_used_name ON identity_patient (used_name_key);
CREATE INDEX identity_patient_birth_date ON identity_patient (birth_date);
