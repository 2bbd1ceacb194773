-- Test and defect frames in two statements: UNNEST of motTests (each element kept as one
-- struct, fields read with t.field, no intermediate copy of the nested tests), then UNNEST of
-- each test's defects straight from the test frame. The defects list rides along in the test
-- frame only to feed the second statement, and the test number is converted once per test and
-- reused for its defects.
CREATE OR REPLACE TEMP TABLE mot_seg_tests AS
SELECT
    rec,
    registration,
    mot_text(t.motTestNumber) AS mot_test_number_raw,
    mot_integral(t.motTestNumber) AS mot_test_number,
    mot_reg(coalesce(t.regMarkTimeOfTest, t.registrationAtTimeOfTest)) AS registration_at_time_of_test,
    mot_text(t.completedDate) AS completed_date_raw,
    mot_timestamp(t.completedDate) AS completed_date,
    mot_enum_of(t.testResult, ['PASSED', 'FAILED']) AS test_result,
    mot_text(t.expiryDate) AS expiry_date_raw,
    mot_date(t.expiryDate) AS expiry_date,
    mot_text(t.odometerValue) AS odometer_value_raw,
    mot_odometer(t.odometerValue) AS odometer_value,
    mot_enum_of(t.odometerUnit, ['MI', 'KM']) AS odometer_unit,
    mot_odometer_result(t.odometerResultType) AS odometer_result_type,
    mot_data_source(t.dataSource) AS data_source,
    t.defects AS defects
FROM (
    -- the registration is normalised once per record, before the unnest repeats it per test
    SELECT rec, registration, unnest(motTests) AS t
    FROM (
        SELECT $rec_base + ordinal AS rec, mot_reg(registration) AS registration, motTests
        FROM mot_seg_records
        WHERE motTests IS NOT NULL
    )
);

CREATE OR REPLACE TEMP TABLE mot_seg_defects AS
SELECT
    rec,
    mot_test_number,
    mot_enum_of(d.type, ['ADVISORY', 'FAIL', 'MAJOR', 'MINOR', 'DANGEROUS', 'PRS', 'USER ENTERED']) AS type,
    mot_text(d.text) AS text,
    mot_text(d.dangerous) AS dangerous_raw,
    TRY_CAST(mot_text(d.dangerous) AS BOOLEAN) AS dangerous
FROM (
    SELECT rec, mot_test_number, unnest(defects) AS d
    FROM mot_seg_tests
    WHERE defects IS NOT NULL
);
