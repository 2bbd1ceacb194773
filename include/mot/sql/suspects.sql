-- Records that MIGHT break a pandera rule of include/mot/schema.py (a superset: each predicate
-- is the negation of a schema check, NULLs counted as suspect wherever in doubt). Pandera then
-- validates only the rows of these records, so its reasons are exactly what a full-frame
-- validation would give, at a cost proportional to the bad records instead of the whole file.
-- Keep in step with schema.py: a rule missing here would let a bad record through unflagged.
CREATE OR REPLACE TEMP TABLE mot_seg_suspects AS
SELECT rec
FROM mot_seg_vehicles
WHERE registration IS NULL OR length(registration) = 0
   OR modification IS NULL OR modification NOT IN ('CREATED', 'UPDATED', 'DELETED')
   OR structure_error IS NOT NULL
   OR (first_used_date_raw IS NOT NULL AND first_used_date IS NULL)
   OR (registration_date_raw IS NOT NULL AND registration_date IS NULL)
   OR (manufacture_date_raw IS NOT NULL AND manufacture_date IS NULL)
   OR (last_mot_test_date_raw IS NOT NULL AND last_mot_test_date IS NULL)
UNION
SELECT rec
FROM mot_seg_tests
WHERE mot_test_number_raw IS NULL OR length(mot_test_number_raw) = 0
   OR mot_test_number IS NULL
   OR (completed_date_raw IS NOT NULL AND completed_date IS NULL)
   OR (expiry_date_raw IS NOT NULL AND expiry_date IS NULL)
   OR coalesce(test_result NOT IN ('PASSED', 'FAILED'), false)
   OR coalesce(odometer_unit NOT IN ('MI', 'KM'), false)
   OR coalesce(odometer_result_type NOT IN ('READ', 'UNREADABLE', 'NO_ODOMETER'), false)
   OR (odometer_result_type = 'READ' AND odometer_value IS NULL)
UNION
SELECT rec
FROM mot_seg_tests
GROUP BY rec, mot_test_number
HAVING count(*) > 1
UNION
SELECT rec
FROM mot_seg_defects
WHERE (dangerous_raw IS NOT NULL AND dangerous IS NULL)
   OR (text IS NULL AND type IS NULL);
