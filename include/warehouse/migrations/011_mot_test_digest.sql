-- Each stored test carries a digest of its defects, so an apply can tell an unchanged test
-- (nearly every test of an UPDATED record: a new MOT adds one test to an unchanged history)
-- from a changed one without reading mot_defects. An unchanged test is left in place and only
-- its record_date moves to the new record; before this, every test and defect of every vehicle
-- in a delta was deleted and inserted again.
-- The defects of a test are a bag (stored without an order), so the digest is order-free: the
-- sum of one hash per defect modulo 2^64, as UBIGINT (Parquet, where staging keeps it, has no
-- 128-bit integer); 0 for no defects. Staging computes it with the same macro
-- (include/mot/sql/parse_macros.sql). A NULL digest never equals anything: such a test is
-- rewritten.
CREATE MACRO mot_defects_digest(type, text, dangerous) AS
    CAST(coalesce(sum(hash(type, text, dangerous)), 0) % 18446744073709551616 AS UBIGINT);

ALTER TABLE mot_tests ADD COLUMN defects_digest UBIGINT;

UPDATE mot_tests t
SET defects_digest = d.digest
FROM (
    SELECT mot_test_number, mot_defects_digest(type, text, dangerous) AS digest
    FROM mot_defects
    GROUP BY mot_test_number
) d
WHERE t.mot_test_number = d.mot_test_number;

UPDATE mot_tests SET defects_digest = 0 WHERE defects_digest IS NULL;
