-- Accepted (applied) snapshots: with the archived Parquet files they are the source of truth;
-- recall_history and recalls are derived from them and can be recomputed from any day on.
CREATE TABLE recall_snapshots (
    manufacturer    VARCHAR NOT NULL,
    business_date   DATE NOT NULL,
    sha256          VARCHAR NOT NULL,
    snapshot_path   VARCHAR NOT NULL,
    row_count       BIGINT NOT NULL,
    applied_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Status intervals: the recall was outstanding with these attributes from valid_from (inclusive)
-- to valid_to (exclusive; NULL while outstanding). It grows with the changes, not the snapshots.
CREATE TABLE recall_history (
    manufacturer                    VARCHAR NOT NULL,
    vin                             VARCHAR NOT NULL,
    manufacturer_campaign_reference VARCHAR NOT NULL,
    dvsa_campaign_reference         VARCHAR,
    recall_campaign_start_date      DATE NOT NULL,
    valid_from                      DATE NOT NULL,
    valid_to                        DATE,
    opened_by                       VARCHAR NOT NULL CHECK (opened_by IN ('NEW', 'REAPPEARED', 'CHANGED')),
    closed_by                       VARCHAR CHECK (closed_by IN ('FIXED', 'CHANGED'))
);

-- One row per recall key with its current status and attributes.
CREATE TABLE recalls (
    manufacturer                    VARCHAR NOT NULL,
    vin                             VARCHAR NOT NULL,
    manufacturer_campaign_reference VARCHAR NOT NULL,
    dvsa_campaign_reference         VARCHAR,
    recall_campaign_start_date      DATE NOT NULL,
    status                          VARCHAR NOT NULL CHECK (status IN ('OUTSTANDING', 'FIXED')),
    first_seen_on                   DATE NOT NULL,
    fixed_on                        DATE,
    last_changed_on                 DATE NOT NULL
);

CREATE VIEW outstanding_recalls AS
SELECT manufacturer, vin, manufacturer_campaign_reference, dvsa_campaign_reference,
       recall_campaign_start_date, first_seen_on
FROM recalls
WHERE status = 'OUTSTANDING';

CREATE MACRO outstanding_recalls_as_of(as_of) AS TABLE
SELECT h.manufacturer, h.vin, h.manufacturer_campaign_reference, h.dvsa_campaign_reference,
       h.recall_campaign_start_date, f.first_seen_on
FROM recall_history h
JOIN (
    SELECT manufacturer, vin, manufacturer_campaign_reference, min(valid_from) AS first_seen_on
    FROM recall_history
    GROUP BY ALL
) f USING (manufacturer, vin, manufacturer_campaign_reference)
WHERE h.valid_from <= CAST(as_of AS DATE)
  AND (h.valid_to IS NULL OR h.valid_to > CAST(as_of AS DATE));

-- What each applied snapshot changed, derived from the history (so it is right after backfills).
CREATE VIEW recall_daily_changes AS
WITH opened AS (
    SELECT manufacturer, valid_from AS business_date,
           count(*) FILTER (WHERE opened_by IN ('NEW', 'REAPPEARED')) AS added,
           count(*) FILTER (WHERE opened_by = 'CHANGED') AS changed
    FROM recall_history GROUP BY ALL
), closed AS (
    SELECT manufacturer, valid_to AS business_date, count(*) FILTER (WHERE closed_by = 'FIXED') AS fixed
    FROM recall_history WHERE valid_to IS NOT NULL GROUP BY ALL
)
SELECT s.manufacturer, s.business_date, s.sha256,
       coalesce(o.added, 0) AS added, coalesce(c.fixed, 0) AS fixed, coalesce(o.changed, 0) AS changed,
       s.row_count AS outstanding
FROM recall_snapshots s
LEFT JOIN opened o USING (manufacturer, business_date)
LEFT JOIN closed c USING (manufacturer, business_date);
