-- How many of the manufacturer's recalls outstanding just before $day the snapshot would fix.
SELECT count(*) AS outstanding,
       count(*) FILTER (WHERE s.vin IS NULL) AS would_fix
FROM outstanding_recalls_as_of($day - INTERVAL 1 DAY) o
LEFT JOIN read_parquet($path) s
  ON o.vin = s.vin AND o.manufacturer_campaign_reference = s.manufacturer_campaign_reference
WHERE o.manufacturer = $manufacturer;
