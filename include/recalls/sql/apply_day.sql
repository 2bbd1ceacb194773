-- Apply one snapshot (temp table `snapshot`) for $manufacturer on $day against the open intervals.
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
FULL JOIN snapshot s
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
    SELECT DISTINCT vin, manufacturer_campaign_reference
    FROM recall_history
    WHERE manufacturer = $manufacturer AND valid_from < $day
) p ON NOT d.was_open AND p.vin = d.vin AND p.manufacturer_campaign_reference = d.ref
WHERE d.is_present;
