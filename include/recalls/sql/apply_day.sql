-- Apply one snapshot (the Parquet file at $path) for $manufacturer on $day against the open intervals.
-- The snapshot is read straight into the join, never copied into a table first: only the ~1% of
-- rows that differ are materialised (recall_diff).
CREATE OR REPLACE TEMP TABLE recall_diff AS
SELECT coalesce(o.vin, s.vin) AS vin,
       coalesce(o.manufacturer_campaign_reference, s.manufacturer_campaign_reference) AS ref,
       o.vin IS NOT NULL AS was_open,
       s.vin IS NOT NULL AS is_present,
       s.dvsa_campaign_reference AS dvsa,
       s.recall_campaign_start_date AS start_date
FROM (
    SELECT vin, manufacturer_campaign_reference, dvsa_campaign_reference, recall_campaign_start_date
    FROM recall_history
    WHERE manufacturer = $manufacturer AND valid_to IS NULL
) o
FULL JOIN read_parquet($path) s
  ON o.vin = s.vin AND o.manufacturer_campaign_reference = s.manufacturer_campaign_reference
WHERE o.vin IS NULL OR s.vin IS NULL
   OR o.dvsa_campaign_reference IS DISTINCT FROM s.dvsa_campaign_reference
   OR o.recall_campaign_start_date <> s.recall_campaign_start_date;

UPDATE recall_history AS h
SET valid_to = $day, closed_by = CASE WHEN d.is_present THEN 'CHANGED' ELSE 'FIXED' END
FROM recall_diff d
WHERE h.manufacturer = $manufacturer AND h.valid_to IS NULL AND d.was_open
  AND h.vin = d.vin AND h.manufacturer_campaign_reference = d.ref;

INSERT INTO recall_history
SELECT $manufacturer, d.vin, d.ref, d.dvsa, d.start_date, $day, NULL,
       CASE WHEN d.was_open THEN 'CHANGED'
            WHEN p.vin IS NOT NULL THEN 'REAPPEARED'
            ELSE 'NEW' END,
       NULL
FROM recall_diff d
LEFT JOIN (
    -- Keys seen before $day, looked up only for the new keys (not a DISTINCT over the whole history).
    SELECT DISTINCT h.vin, h.manufacturer_campaign_reference
    FROM recall_history h
    SEMI JOIN recall_diff n
      ON n.vin = h.vin AND n.ref = h.manufacturer_campaign_reference AND n.is_present AND NOT n.was_open
    WHERE h.manufacturer = $manufacturer AND h.valid_from < $day
) p ON NOT d.was_open AND p.vin = d.vin AND p.manufacturer_campaign_reference = d.ref
WHERE d.is_present;
