-- Fast path: a JSON-lines segment as typed nested columns, as a VIEW: each flatten query
-- scans the file for the columns it uses (the vehicle columns alone skip converting the nested
-- tests, the costly part), which is cheaper than materialising the records and scanning twice.
-- Every leaf is VARCHAR so no value can fail the scan (conversion happens in flatten_*.sql
-- with TRY_CAST); unknown fields are ignored because only the listed columns are read.
-- A field of the wrong *shape* (motTests not a list, ...) makes a flatten query fail; the
-- caller then reads the segment with read_fallback.sql, which quarantines such records.
-- The segment is scanned by a single-threaded connection, so ordinality is file order.
-- {path}, {columns}, {max_object_size} are filled in by include/mot/parse.py.
CREATE OR REPLACE TEMP VIEW mot_seg_records AS
SELECT
    ordinality AS ordinal,
    CAST(NULL AS VARCHAR) AS structure_error,
    * EXCLUDE (ordinality)
FROM read_json(
    {path},
    format = 'newline_delimited',
    records = true,
    auto_detect = false,
    columns = {columns},
    maximum_object_size = {max_object_size}
) WITH ORDINALITY;
