-- Recompute the `recalls` rows of every key the rewind or the replay touched: keys whose old
-- row changed on or after $from_date, and keys whose history now has a boundary from there on.
CREATE OR REPLACE TEMP TABLE touched_recalls AS
SELECT vin, manufacturer_campaign_reference
FROM recalls
WHERE manufacturer = $manufacturer AND last_changed_on >= $from_date
UNION
SELECT vin, manufacturer_campaign_reference
FROM recall_history
WHERE manufacturer = $manufacturer AND (valid_from >= $from_date OR valid_to >= $from_date);

DELETE FROM recalls AS r
USING touched_recalls t
WHERE r.manufacturer = $manufacturer
  AND r.vin = t.vin AND r.manufacturer_campaign_reference = t.manufacturer_campaign_reference;

INSERT INTO recalls
SELECT h.manufacturer, h.vin, h.manufacturer_campaign_reference,
       arg_max_null(h.dvsa_campaign_reference, h.valid_from),
       arg_max(h.recall_campaign_start_date, h.valid_from),
       CASE WHEN bool_or(h.valid_to IS NULL) THEN 'OUTSTANDING' ELSE 'FIXED' END,
       min(h.valid_from),
       CASE WHEN bool_or(h.valid_to IS NULL) THEN NULL ELSE max(h.valid_to) END,
       greatest(max(h.valid_from), max(coalesce(h.valid_to, h.valid_from)))
FROM recall_history h
JOIN touched_recalls t
  ON h.vin = t.vin AND h.manufacturer_campaign_reference = t.manufacturer_campaign_reference
WHERE h.manufacturer = $manufacturer
GROUP BY h.manufacturer, h.vin, h.manufacturer_campaign_reference;

DROP TABLE touched_recalls;
