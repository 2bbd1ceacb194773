-- Fast path: one DuckDB scan of a JSON-lines segment straight into typed nested columns.
-- Every leaf is VARCHAR so no value can fail the scan (conversion happens in flatten_*.sql
-- with TRY_CAST); unknown fields are ignored because only the listed columns are read.
-- A field of the wrong *shape* (motTests not a list, ...) makes the scan fail; the caller
-- then retries with read_fallback.sql, which quarantines such records instead.
-- {path}, {columns}, {max_object_size} are filled in by include/mot/parse.py.
CREATE OR REPLACE TEMP TABLE mot_seg_records AS
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
