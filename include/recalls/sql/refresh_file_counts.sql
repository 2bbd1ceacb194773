-- Keep the counts recorded on accepted files true after a replay: a late snapshot for an earlier
-- day changes what every later applied snapshot added and fixed.
UPDATE recall_files AS f
SET added_count = c.added, fixed_count = c.fixed, changed_count = c.changed, outstanding_count = c.outstanding
FROM recall_daily_changes c
WHERE f.manufacturer = $manufacturer AND f.business_date >= $from_date AND f.status = 'ACCEPTED'
  AND c.manufacturer = f.manufacturer AND c.business_date = f.business_date AND c.sha256 = f.sha256;
