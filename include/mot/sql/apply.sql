-- Apply one staged delivery inside the caller's transaction (include/mot/versioning.py).
-- Inputs: temp views mot_stg_vehicles / mot_stg_tests / mot_stg_defects (the staged parquet)
-- and parameters $business_date, $source_rank, $sha256.
--
-- Order independence: the result depends only on the SET of applied records. Vehicle versions
-- of every registration in the file are recomputed from all of its events (mot_vehicle_events),
-- so a late delta slots into history; tests follow the latest record of each vehicle (by
-- business date), and a test held by two vehicles is owned by a deterministic rule.
-- Each "-- step:" is run separately so failures are attributed (and can be injected in tests).

-- step: new_events
-- one record per registration: within a file the last occurrence (part, line) wins
CREATE OR REPLACE TEMP TABLE mot_new_events AS
SELECT * EXCLUDE (rn)
FROM (
    SELECT v.*, row_number() OVER (PARTITION BY registration ORDER BY rec DESC) AS rn
    FROM mot_stg_vehicles v
)
WHERE rn = 1;

-- step: store_events
DELETE FROM mot_vehicle_events
WHERE business_date = $business_date
  AND source_rank = $source_rank
  AND registration IN (SELECT registration FROM mot_new_events);

INSERT INTO mot_vehicle_events
SELECT
    registration, $business_date, $source_rank, modification,
    make, model, primary_colour, secondary_colour, fuel_type, engine_size,
    first_used_date, registration_date, manufacture_date, last_mot_test_date, data_source,
    $sha256
FROM mot_new_events;

-- step: history
CREATE OR REPLACE TEMP TABLE mot_aff_events AS
SELECT e.*
FROM mot_vehicle_events e
SEMI JOIN mot_new_events n USING (registration);

-- a version opens at: the first event, a CREATED, the first DELETED of a run, anything after
-- a deletion (re-creation), or an UPDATED whose attributes differ from the previous event
CREATE OR REPLACE TEMP TABLE mot_aff_flagged AS
WITH effective AS (
    SELECT *
    FROM mot_aff_events
    QUALIFY row_number() OVER (PARTITION BY registration, business_date ORDER BY source_rank DESC) = 1
),
with_previous AS (
    -- one lag of the whole attribute row, not one per column: a window function each made
    -- this the slowest step of the apply
    SELECT
        *,
        lag(struct_pack(
            modification, make, model, primary_colour, secondary_colour, fuel_type, engine_size,
            first_used_date, registration_date, manufacture_date, last_mot_test_date, data_source
        )) OVER (PARTITION BY registration ORDER BY business_date) AS p
    FROM effective
)
SELECT
    registration, business_date, source_rank, modification,
    make, model, primary_colour, secondary_colour, fuel_type, engine_size,
    first_used_date, registration_date, manufacture_date, last_mot_test_date, data_source,
    CASE
        WHEN p IS NULL THEN true
        WHEN modification = 'DELETED' THEN p.modification <> 'DELETED'
        WHEN p.modification = 'DELETED' THEN true
        WHEN modification = 'CREATED' THEN true
        ELSE make IS DISTINCT FROM p.make
            OR model IS DISTINCT FROM p.model
            OR primary_colour IS DISTINCT FROM p.primary_colour
            OR secondary_colour IS DISTINCT FROM p.secondary_colour
            OR fuel_type IS DISTINCT FROM p.fuel_type
            OR engine_size IS DISTINCT FROM p.engine_size
            OR first_used_date IS DISTINCT FROM p.first_used_date
            OR registration_date IS DISTINCT FROM p.registration_date
            OR manufacture_date IS DISTINCT FROM p.manufacture_date
            OR last_mot_test_date IS DISTINCT FROM p.last_mot_test_date
            OR data_source IS DISTINCT FROM p.data_source
    END AS opens
FROM with_previous;

-- step: counts
CREATE OR REPLACE TEMP TABLE mot_apply_counts AS
SELECT
    count(*) AS records,
    count(*) FILTER (WHERE n.modification = 'CREATED') AS created,
    count(*) FILTER (WHERE n.modification = 'UPDATED' AND coalesce(f.opens, false)) AS updated,
    count(*) FILTER (WHERE n.modification = 'DELETED') AS deleted,
    count(*) FILTER (WHERE n.modification = 'UPDATED' AND NOT coalesce(f.opens, false)) AS unchanged
FROM mot_new_events n
LEFT JOIN mot_aff_flagged f
    ON f.registration = n.registration
   AND f.business_date = $business_date
   AND f.source_rank = $source_rank;

-- step: versions
DELETE FROM vehicles WHERE registration IN (SELECT registration FROM mot_new_events);

INSERT INTO vehicles
SELECT
    registration, make, model, primary_colour, secondary_colour, fuel_type, engine_size,
    first_used_date, registration_date, manufacture_date, last_mot_test_date, data_source,
    valid_from, valid_to, valid_to IS NULL AS is_current, modification = 'DELETED' AS is_deleted,
    modification
FROM (
    SELECT
        *,
        business_date AS valid_from,
        lead(business_date) OVER (PARTITION BY registration ORDER BY business_date) AS valid_to
    FROM mot_aff_flagged
    WHERE opens
);

-- step: test_candidates
-- registrations whose latest record is this file's: their tests are replaced by this record's
CREATE OR REPLACE TEMP TABLE mot_x AS
SELECT registration, modification
FROM mot_aff_events
QUALIFY row_number() OVER (PARTITION BY registration ORDER BY business_date DESC, source_rank DESC) = 1
    AND business_date = $business_date
    AND source_rank = $source_rank;

-- the candidate records (latest, not DELETED) and, as a view over the staged parquet, their
-- tests: a temp table of 1.5M tests cost more to fill than the three reads of the view below
-- (two of them project the test number alone); the defects insert reuses mot_cand_recs
CREATE OR REPLACE TEMP TABLE mot_cand_recs AS
SELECT n.rec
FROM mot_new_events n
SEMI JOIN (SELECT registration FROM mot_x WHERE modification <> 'DELETED') x USING (registration);

CREATE OR REPLACE TEMP VIEW mot_cand_new AS
SELECT t.*
FROM mot_stg_tests t
SEMI JOIN mot_cand_recs c USING (rec);

-- one row per affected test number; new_candidates counts this file's records holding it, so
-- the numbers claimed twice within the file come out of the same aggregation
CREATE OR REPLACE TEMP TABLE mot_aff_tests AS
SELECT mot_test_number, count(*) FILTER (WHERE is_new) AS new_candidates
FROM (
    SELECT mot_test_number, false AS is_new FROM mot_tests WHERE registration IN (SELECT registration FROM mot_x)
    UNION ALL
    SELECT mot_test_number, false FROM mot_tests_shadowed WHERE registration IN (SELECT registration FROM mot_x)
    UNION ALL
    SELECT mot_test_number, true FROM mot_cand_new
)
GROUP BY mot_test_number;

-- step: test_owners
-- every vehicle whose latest record holds an affected test competes for it: newest record
-- first, then the vehicle that carried the plate at the test, then the smallest registration
-- Only test numbers with more than one contender need ranking: a number held by just one new
-- candidate (nearly all of them) ranks first trivially, so mot_ranked holds the contested
-- numbers only and the uncontested candidates are inserted straight from mot_cand_new below.
CREATE OR REPLACE TEMP TABLE mot_contested AS
SELECT mot_test_number FROM mot_tests
WHERE mot_test_number IN (SELECT mot_test_number FROM mot_aff_tests)
  AND registration NOT IN (SELECT registration FROM mot_x)
UNION
SELECT mot_test_number FROM mot_tests_shadowed
WHERE mot_test_number IN (SELECT mot_test_number FROM mot_aff_tests)
  AND registration NOT IN (SELECT registration FROM mot_x)
UNION
SELECT mot_test_number FROM mot_aff_tests
WHERE mot_test_number IS NOT NULL AND new_candidates > 1;

CREATE OR REPLACE TEMP TABLE mot_ranked AS
SELECT
    *,
    row_number() OVER (
        PARTITION BY mot_test_number
        ORDER BY record_date DESC, (registration IS NOT DISTINCT FROM registration_at_time_of_test) DESC, registration
    ) AS rk
FROM (
    -- (the old holders of an affected number are exactly what made it contested, and
    -- mot_contested is a subset of mot_aff_tests: filtering on it is the same set, and nearly
    -- free when nothing is contested)
    SELECT 'owner' AS src, CAST(NULL AS BIGINT) AS rec, t.*
    FROM mot_tests t
    WHERE t.mot_test_number IN (SELECT mot_test_number FROM mot_contested)
      AND t.registration NOT IN (SELECT registration FROM mot_x)
    UNION ALL BY NAME
    SELECT 'shadow' AS src, CAST(NULL AS BIGINT) AS rec, s.* EXCLUDE (defects)
    FROM mot_tests_shadowed s
    WHERE s.mot_test_number IN (SELECT mot_test_number FROM mot_contested)
      AND s.registration NOT IN (SELECT registration FROM mot_x)
    UNION ALL BY NAME
    SELECT 'new' AS src, c.*, CAST($business_date AS DATE) AS record_date
    FROM mot_cand_new c
    WHERE c.mot_test_number IS NULL OR c.mot_test_number IN (SELECT mot_test_number FROM mot_contested)
);

-- losers keep their defects beside them, collected before the owners' rows are replaced
CREATE OR REPLACE TEMP TABLE mot_new_shadows AS
SELECT
    r.mot_test_number, r.registration, r.registration_at_time_of_test, r.completed_date, r.test_result,
    r.expiry_date, r.odometer_value, r.odometer_unit, r.odometer_result_type, r.data_source, r.record_date,
    coalesce(
        CASE r.src
            WHEN 'shadow' THEN s.defects
            WHEN 'owner' THEN (
                SELECT list(struct_pack(type := d.type, text := d.text, dangerous := d.dangerous))
                FROM mot_defects d WHERE d.mot_test_number = r.mot_test_number)
            ELSE (
                SELECT list(struct_pack(type := d.type, text := d.text, dangerous := d.dangerous))
                FROM mot_stg_defects d WHERE d.rec = r.rec AND d.mot_test_number = r.mot_test_number)
        END,
        []
    ) AS defects
FROM mot_ranked r
LEFT JOIN mot_tests_shadowed s
    ON r.src = 'shadow' AND s.mot_test_number = r.mot_test_number AND s.registration = r.registration
WHERE r.rk > 1;

-- step: replace_tests
-- (an anti join, not EXCEPT: mot_aff_tests is already distinct and the owners kept are few,
-- so this probes a tiny hash table instead of hashing every affected test number again)
CREATE OR REPLACE TEMP TABLE mot_replace_tests AS
SELECT mot_test_number FROM mot_aff_tests
ANTI JOIN (SELECT mot_test_number FROM mot_ranked WHERE rk = 1 AND src = 'owner') o USING (mot_test_number);

DELETE FROM mot_defects WHERE mot_test_number IN (SELECT mot_test_number FROM mot_replace_tests);

DELETE FROM mot_tests WHERE mot_test_number IN (SELECT mot_test_number FROM mot_replace_tests);

INSERT INTO mot_tests
SELECT
    mot_test_number, registration, registration_at_time_of_test, completed_date, test_result,
    expiry_date, odometer_value, odometer_unit, odometer_result_type, data_source, record_date
FROM mot_ranked
WHERE rk = 1 AND src <> 'owner'
UNION ALL
SELECT
    mot_test_number, registration, registration_at_time_of_test, completed_date, test_result,
    expiry_date, odometer_value, odometer_unit, odometer_result_type, data_source, CAST($business_date AS DATE)
FROM mot_cand_new
WHERE mot_test_number IS NOT NULL AND mot_test_number NOT IN (SELECT mot_test_number FROM mot_contested);

-- the defects of the tests just inserted. A defect carries its record and test number, and a
-- candidate test is any test of a candidate record (new_events, latest and not DELETED), so
-- the uncontested ones are found by record (a semi join on the ~records, not on every test
-- key); the contested numbers this file won come from mot_ranked.
INSERT INTO mot_defects
SELECT d.mot_test_number, d.type, d.text, d.dangerous
FROM mot_stg_defects d
SEMI JOIN mot_cand_recs c USING (rec)
WHERE d.mot_test_number IS NOT NULL AND d.mot_test_number NOT IN (SELECT mot_test_number FROM mot_contested)
UNION ALL
SELECT d.mot_test_number, d.type, d.text, d.dangerous
FROM mot_stg_defects d
SEMI JOIN (SELECT rec, mot_test_number FROM mot_ranked WHERE rk = 1 AND src = 'new') r
    ON r.rec = d.rec AND r.mot_test_number = d.mot_test_number;

INSERT INTO mot_defects
SELECT mot_test_number, x.defect.type, x.defect.text, x.defect.dangerous
FROM (
    SELECT r.mot_test_number, unnest(s.defects) AS defect
    FROM mot_ranked r
    JOIN mot_tests_shadowed s ON s.mot_test_number = r.mot_test_number AND s.registration = r.registration
    WHERE r.rk = 1 AND r.src = 'shadow'
) x;

DELETE FROM mot_tests_shadowed WHERE mot_test_number IN (SELECT mot_test_number FROM mot_aff_tests);

INSERT INTO mot_tests_shadowed SELECT * FROM mot_new_shadows;
