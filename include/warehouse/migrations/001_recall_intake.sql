-- Every recall file received (or expected and missing), one row per file and business day.
CREATE TABLE recall_files (
    manufacturer        VARCHAR NOT NULL,
    business_date       DATE NOT NULL,
    upload_id           VARCHAR,             -- one upload (same bytes twice = two uploads); NULL for MISSING
    sha256              VARCHAR,             -- NULL for MISSING
    file_name           VARCHAR,
    status              VARCHAR NOT NULL CHECK (status IN ('ACCEPTED', 'REJECTED', 'MISSING', 'HELD')),
    error_codes         VARCHAR[] NOT NULL DEFAULT [],
    warning_codes       VARCHAR[] NOT NULL DEFAULT [],
    row_count           BIGINT,
    warning_count       BIGINT,
    size_bytes          BIGINT,
    remote_mtime        TIMESTAMPTZ,
    received_at         TIMESTAMPTZ,
    scanner_verdict     VARCHAR,             -- CLEAN or the signature name
    scanner_name        VARCHAR,
    report_path         VARCHAR,             -- row-level report CSV in the archive
    snapshot_path       VARCHAR,             -- staged accepted snapshot (Parquet) in the archive
    added_count         BIGINT,
    fixed_count         BIGINT,
    changed_count       BIGINT,
    outstanding_count   BIGINT,
    hold_reason         VARCHAR,
    released_at         TIMESTAMPTZ,
    validation_seconds  DOUBLE,
    apply_seconds       DOUBLE,
    recorded_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    dag_run_id          VARCHAR
);
CREATE UNIQUE INDEX recall_files_upload ON recall_files (manufacturer, business_date, upload_id);

-- Messages to send, written in the same transaction as the decision that causes them, so a
-- message is never lost (SMTP down: it waits) and never doubled (one row per dedupe key).
CREATE TABLE outbox (
    message_key     VARCHAR PRIMARY KEY,
    recipients      VARCHAR[] NOT NULL,
    subject         VARCHAR NOT NULL,
    body_text       VARCHAR NOT NULL,
    body_html       VARCHAR,
    attachment_name VARCHAR,
    attachment      BLOB,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      VARCHAR
);
