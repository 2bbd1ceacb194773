-- Vehicle frame: one row per record of the segment, raw text kept beside every conversion
-- so the pandera schema can tell "absent" from "present but unparseable".
-- $rec_base makes record ids globally ordered (part, segment, ordinal); $default_modification
-- is NULL for deltas and 'CREATED' for bulk files (which carry no change type).
CREATE OR REPLACE TEMP TABLE mot_seg_vehicles AS
SELECT
    $rec_base + ordinal AS rec,
    ordinal,
    registration AS registration_raw,
    mot_reg(registration) AS registration,
    coalesce(mot_enum(coalesce(modification, last_modification)), $default_modification) AS modification,
    mot_text(make) AS make,
    mot_text(model) AS model,
    mot_text(primaryColour) AS primary_colour,
    mot_text(secondaryColour) AS secondary_colour,
    mot_text(fuelType) AS fuel_type,
    mot_text(engineSize) AS engine_size,
    mot_text(firstUsedDate) AS first_used_date_raw,
    mot_date(firstUsedDate) AS first_used_date,
    mot_text(registrationDate) AS registration_date_raw,
    mot_date(registrationDate) AS registration_date,
    mot_text(manufactureDate) AS manufacture_date_raw,
    mot_date(manufactureDate) AS manufacture_date,
    mot_text(lastMotTestDate) AS last_mot_test_date_raw,
    mot_timestamp(lastMotTestDate) AS last_mot_test_date,
    mot_data_source(dataSource) AS data_source,
    structure_error
FROM mot_seg_records;
