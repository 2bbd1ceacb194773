-- MOT history: versioned vehicles, current tests/defects, quarantine and the delivery audit.
-- Logical keys are documented per table and maintained by include/mot/versioning.py; no
-- PRIMARY KEY indexes on the big tables (DuckDB's ART indexes on hundreds of millions of rows
-- cost memory and make the delete-then-insert of a recompute fail inside one transaction).

-- Every vehicle record ever applied, one row per (registration, business_date, source_rank):
-- the compact event log from which `vehicles` is recomputed when a late delta slots into
-- history. source_rank orders a bulk snapshot (0) before a delta (1) of the same day.
CREATE TABLE mot_vehicle_events (
    registration        VARCHAR NOT NULL,
    business_date       DATE NOT NULL,
    source_rank         TINYINT NOT NULL,
    modification        VARCHAR NOT NULL,
    make                VARCHAR,
    model               VARCHAR,
    primary_colour      VARCHAR,
    secondary_colour    VARCHAR,
    fuel_type           VARCHAR,
    engine_size         VARCHAR,
    first_used_date     DATE,
    registration_date   DATE,
    manufacture_date    DATE,
    last_mot_test_date  TIMESTAMP,
    data_source         VARCHAR,
    sha256              VARCHAR NOT NULL
);

-- SCD type 2, key (registration, valid_from). A version is valid on days
-- valid_from <= d < valid_to (valid_to NULL: open). A deletion is a version row with
-- is_deleted = true (carrying the attributes of the DELETED record), so the history shows
-- when the vehicle disappeared; a later CREATED/UPDATED opens a new live version.
-- is_current marks the latest version row (deleted or not); live vehicles today are
-- is_current AND NOT is_deleted.
CREATE TABLE vehicles (
    registration        VARCHAR NOT NULL,
    make                VARCHAR,
    model               VARCHAR,
    primary_colour      VARCHAR,
    secondary_colour    VARCHAR,
    fuel_type           VARCHAR,
    engine_size         VARCHAR,
    first_used_date     DATE,
    registration_date   DATE,
    manufacture_date    DATE,
    last_mot_test_date  TIMESTAMP,
    data_source         VARCHAR,
    valid_from          DATE NOT NULL,
    valid_to            DATE,
    is_current          BOOLEAN NOT NULL,
    is_deleted          BOOLEAN NOT NULL,
    modification        VARCHAR NOT NULL
);

-- Tests of the latest record of each live vehicle, key mot_test_number. record_date is the
-- business date of that record; when two vehicles' latest records hold the same test (plate
-- transfers) the newest record owns it and the other copy waits in mot_tests_shadowed.
CREATE TABLE mot_tests (
    mot_test_number                 BIGINT NOT NULL,
    registration                    VARCHAR NOT NULL,
    registration_at_time_of_test    VARCHAR,
    completed_date                  TIMESTAMP,
    test_result                     VARCHAR,
    expiry_date                     DATE,
    odometer_value                  INTEGER,
    odometer_unit                   VARCHAR,
    odometer_result_type            VARCHAR,
    data_source                     VARCHAR,
    record_date                     DATE NOT NULL
);

CREATE TABLE mot_defects (
    mot_test_number     BIGINT NOT NULL,
    type                VARCHAR,
    text                VARCHAR,
    dangerous           BOOLEAN
);

-- Copies of tests that another vehicle's newer record owns (normally empty or tiny); kept
-- so ownership falls back correctly, whatever order deliveries are applied in.
CREATE TABLE mot_tests_shadowed (
    mot_test_number                 BIGINT NOT NULL,
    registration                    VARCHAR NOT NULL,
    registration_at_time_of_test    VARCHAR,
    completed_date                  TIMESTAMP,
    test_result                     VARCHAR,
    expiry_date                     DATE,
    odometer_value                  INTEGER,
    odometer_unit                   VARCHAR,
    odometer_result_type            VARCHAR,
    data_source                     VARCHAR,
    record_date                     DATE NOT NULL,
    defects                         STRUCT(type VARCHAR, text VARCHAR, dangerous BOOLEAN)[]
);

-- Records that failed validation, with where they were and why; key (sha256, part, line).
CREATE TABLE mot_quarantine (
    business_date   DATE NOT NULL,
    file_name       VARCHAR NOT NULL,
    sha256          VARCHAR NOT NULL,
    part            VARCHAR,
    line            BIGINT,
    registration    VARCHAR,
    reason          VARCHAR NOT NULL,
    record          VARCHAR,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per (business_date, kind, file_name, sha256) delivery outcome; MISSING rows have
-- no file content (sha256 NULL) and are removed once a file for that day is recorded.
CREATE TABLE mot_delta_files (
    business_date       DATE NOT NULL,
    kind                VARCHAR NOT NULL CHECK (kind IN ('delta', 'bulk')),
    file_name           VARCHAR NOT NULL,
    sha256              VARCHAR,
    status              VARCHAR NOT NULL CHECK (status IN ('APPLIED', 'REJECTED', 'HELD', 'MISSING')),
    records             BIGINT,
    created             BIGINT,
    updated             BIGINT,
    deleted             BIGINT,
    unchanged           BIGINT,
    quarantined         BIGINT,
    superseded          BIGINT,
    quarantine_share    DOUBLE,
    uncompressed_bytes  BIGINT,
    message             VARCHAR,
    part                VARCHAR,
    line                BIGINT,
    staged_directory    VARCHAR,
    stage_seconds       DOUBLE,
    apply_seconds       DOUBLE,
    attempts            INTEGER NOT NULL DEFAULT 1,
    first_seen_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    recorded_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_at          TIMESTAMPTZ
);

-- Point in time: the live vehicles as they were on day d (deleted vehicles excluded).
CREATE MACRO vehicles_as_of(d) AS TABLE
    SELECT
        registration, make, model, primary_colour, secondary_colour, fuel_type, engine_size,
        first_used_date, registration_date, manufacture_date, last_mot_test_date, data_source,
        valid_from, valid_to
    FROM vehicles
    WHERE valid_from <= CAST(d AS DATE)
      AND (valid_to IS NULL OR valid_to > CAST(d AS DATE))
      AND NOT is_deleted;
