-- Undo everything the manufacturer's snapshots from $from_date on did, leaving the state as the
-- latest earlier snapshot left it; the caller then replays the snapshots from $from_date in order.
DELETE FROM recall_history
WHERE manufacturer = $manufacturer AND valid_from >= $from_date;

UPDATE recall_history SET valid_to = NULL, closed_by = NULL
WHERE manufacturer = $manufacturer AND valid_to >= $from_date;
