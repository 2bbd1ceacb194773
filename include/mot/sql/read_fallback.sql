-- Slow path, only for segments where read_typed.sql hit a field of the wrong shape:
-- motTests is read as raw JSON and converted with the non-strict json_transform, so a record
-- whose motTests/defects is not a list gets a structure_error (and is quarantined) instead of
-- failing the whole file. Produces exactly the columns of read_typed.sql.
CREATE OR REPLACE TEMP TABLE mot_seg_records AS
WITH raw AS (
    SELECT ordinality AS ordinal, * EXCLUDE (ordinality)
    FROM read_json(
        {path},
        format = 'newline_delimited',
        records = true,
        auto_detect = false,
        columns = {json_columns},
        maximum_object_size = {max_object_size}
    ) WITH ORDINALITY
),
tests AS (
    SELECT
        * EXCLUDE (motTests),
        CASE WHEN json_type(motTests) = 'ARRAY' THEN json_transform(motTests, {tests_json_shape}) END AS tests_json,
        CASE WHEN motTests IS NOT NULL AND json_type(motTests) NOT IN ('ARRAY', 'NULL')
             THEN 'motTests is not a list' END AS tests_error
    FROM raw
)
SELECT
    ordinal,
    coalesce(
        tests_error,
        CASE WHEN list_bool_or(list_transform(
                 tests_json, lambda t: t IS NULL OR (t.defects IS NOT NULL AND json_type(t.defects) NOT IN ('ARRAY', 'NULL'))))
             THEN 'a motTests element is not an object or its defects is not a list' END
    ) AS structure_error,
    * EXCLUDE (ordinal, tests_json, tests_error),
    CAST(list_transform(
        tests_json,
        lambda t: struct_pack(
            {tests_fields},
            defects := CASE WHEN json_type(t.defects) = 'ARRAY' THEN json_transform(t.defects, {defects_json_shape}) END
        )
    ) AS {tests_type}) AS motTests
FROM tests;
