-- Staged tests written before defects_digest was staged with them (a held delivery released
-- after an upgrade, or a bulk part staged by the previous version): the digest is computed here
-- from the staged defects exactly as staging does (parse_macros.sql), so the apply sees one
-- shape either way. {tests} and {defects} are lists of our own quoted staging paths.
CREATE OR REPLACE TEMP VIEW mot_stg_tests AS
SELECT
    t.rec, t.registration, t.mot_test_number, t.registration_at_time_of_test, t.completed_date,
    t.test_result, t.expiry_date, t.odometer_value, t.odometer_unit, t.odometer_result_type,
    t.data_source, coalesce(g.defects_digest, 0) AS defects_digest
FROM read_parquet({tests}, union_by_name = true) t
LEFT JOIN (
    SELECT rec, mot_test_number, mot_defects_digest(type, text, dangerous) AS defects_digest
    FROM read_parquet({defects})
    GROUP BY rec, mot_test_number
) g ON g.rec = t.rec AND g.mot_test_number = t.mot_test_number;
