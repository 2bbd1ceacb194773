-- Test and defect frames: UNNEST of motTests (struct fields become columns), then of each
-- test's defects. Only the test number travels with the defects, never the whole test.
CREATE OR REPLACE TEMP TABLE mot_seg_tests_nested AS
SELECT
    $rec_base + ordinal AS rec,
    mot_reg(registration) AS registration,
    unnest(motTests, recursive := true)
FROM mot_seg_records
WHERE motTests IS NOT NULL;

CREATE OR REPLACE TEMP TABLE mot_seg_tests AS
SELECT
    rec,
    registration,
    mot_text(motTestNumber) AS mot_test_number_raw,
    mot_integral(motTestNumber) AS mot_test_number,
    mot_reg(coalesce(regMarkTimeOfTest, registrationAtTimeOfTest)) AS registration_at_time_of_test,
    mot_text(completedDate) AS completed_date_raw,
    mot_timestamp(completedDate) AS completed_date,
    mot_enum(testResult) AS test_result,
    mot_text(expiryDate) AS expiry_date_raw,
    mot_date(expiryDate) AS expiry_date,
    mot_text(odometerValue) AS odometer_value_raw,
    mot_odometer(odometerValue) AS odometer_value,
    mot_enum(odometerUnit) AS odometer_unit,
    mot_odometer_result(odometerResultType) AS odometer_result_type,
    mot_enum(dataSource) AS data_source
FROM mot_seg_tests_nested;

CREATE OR REPLACE TEMP TABLE mot_seg_defects AS
SELECT
    rec,
    mot_integral(motTestNumber) AS mot_test_number,
    mot_enum(d.type) AS type,
    mot_text(d.text) AS text,
    mot_text(d.dangerous) AS dangerous_raw,
    TRY_CAST(mot_text(d.dangerous) AS BOOLEAN) AS dangerous
FROM (
    SELECT rec, motTestNumber, unnest(defects) AS d
    FROM mot_seg_tests_nested
    WHERE defects IS NOT NULL
);
