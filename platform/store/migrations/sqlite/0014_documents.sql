-- Shared documents (IHE MHD on FHIR R4): Binary contents and DocumentReference entries.
-- Contents live in the blob store under their SHA-256; these rows only reference them.
-- Nothing is ever deleted: a document withdrawn by its author is marked entered-in-error, a
-- replaced one superseded, and every version stays. Times are microseconds since the Unix epoch.

-- One row per upload (streamed POST /fhir/Binary or a Binary entry of an ITI-65 bundle). Two
-- uploads of the same bytes are two Binaries over one blob: each has its own uploader and date.
CREATE TABLE document_binary (
    id              TEXT    PRIMARY KEY,
    sha256          TEXT    NOT NULL,
    -- FHIR R4 Attachment.hash is SHA-1: computed during the same streamed pass, lower-case hex.
    sha1            TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    content_type    TEXT    NOT NULL,
    uploaded_by     TEXT    NOT NULL,
    created_at_us   INTEGER NOT NULL
);

-- One row per DocumentReference. The searchable elements are columns; the whole immutable
-- metadata as provided is the JSON document `entry` (read back to build the resource). The
-- status is the only mutable element and lives in its column alone.
CREATE TABLE document_entry (
    id                  TEXT    PRIMARY KEY,
    patient_id          TEXT    NOT NULL,
    -- MHD: a masterIdentifier names one document version across the region, never reused.
    master_identifier   TEXT    NOT NULL UNIQUE,
    status              TEXT    NOT NULL,
    type_code           TEXT    NOT NULL,
    category_system     TEXT,
    category_code       TEXT,
    author_national_id  TEXT,
    date_us             INTEGER NOT NULL,
    -- context.period as the range of instants it covers (start inclusive, end exclusive); NULL
    -- for an open end.
    period_start_us     INTEGER,
    period_end_us       INTEGER,
    binary_id           TEXT    NOT NULL REFERENCES document_binary (id),
    replaces            TEXT    REFERENCES document_entry (id),
    entry               TEXT    NOT NULL,
    created_by          TEXT    NOT NULL,
    created_at_us       INTEGER NOT NULL,
    updated_at_us       INTEGER NOT NULL
);
-- ITI-67 always names one patient and pages in (date desc, id) order: this index yields a
-- patient's rows already in that order, so a page is read without sorting, whatever the size of
-- the table; the other filters are checked on that patient's rows only.
CREATE INDEX document_entry_patient_date ON document_entry (patient_id, date_us DESC, id);
-- ITI-68: which documents (hence which patients) a Binary belongs to, for the access decision.
CREATE INDEX document_entry_binary ON document_entry (binary_id);
-- Which document replaced a given one.
CREATE INDEX document_entry_replaces ON document_entry (replaces);
