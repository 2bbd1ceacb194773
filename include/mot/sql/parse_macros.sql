-- Normalisation helpers used by the flatten queries (staging connection only, TEMP macros).
-- Kept in SQL so the hot path never leaves DuckDB's vectorised engine.

-- Free text: trimmed, empty -> NULL (so '' and a missing field compare equal for versioning).
-- trim() copies every string it is given; nearly all values need no trimming, so only those
-- that might go through it: empty, a space at either end, or any non-ASCII character (trim
-- also strips Unicode spaces such as U+00A0 and U+3000; an ASCII string has only ' ' to strip,
-- and strlen = length says it is ASCII). A 4x saving on long defect texts, same result.
CREATE OR REPLACE TEMP MACRO mot_text(x) AS
    CASE
        WHEN x = '' OR x LIKE ' %' OR x LIKE '% ' OR strlen(x) <> length(x) THEN nullif(trim(x), '')
        ELSE x
    END;

-- Enumerations: DVSA's own examples vary in case; normalise, never reject on case.
CREATE OR REPLACE TEMP MACRO mot_enum(x) AS nullif(upper(trim(x)), '');

-- Enumerations with a known canonical spelling: a value already canonical (nearly all of them)
-- is kept as it is, anything else goes through mot_enum. Every member of `canonical` must be
-- its own mot_enum (upper case, no surrounding blanks), so the result is exactly mot_enum(x)
-- without an upper() copy of every value.
CREATE OR REPLACE TEMP MACRO mot_enum_of(x, canonical) AS
    CASE WHEN list_contains(canonical, x) THEN x ELSE mot_enum(x) END;

-- dataSource, on vehicles and on tests: dvsa/dvla/DVSA/"DVA NI"/CVS in DVSA's examples.
CREATE OR REPLACE TEMP MACRO mot_data_source(x) AS mot_enum_of(x, ['DVSA', 'DVLA', 'DVA NI', 'CVS']);

-- Registration marks: upper case without spaces (the consumer key of a vehicle).
CREATE OR REPLACE TEMP MACRO mot_reg(x) AS nullif(upper(replace(trim(x), ' ', '')), '');

-- Dates: 'YYYY-MM-DD', also accepted with a time part.
CREATE OR REPLACE TEMP MACRO mot_date(x) AS
    coalesce(TRY_CAST(mot_text(x) AS DATE), TRY_CAST(TRY_CAST(mot_text(x) AS TIMESTAMP) AS DATE));

CREATE OR REPLACE TEMP MACRO mot_timestamp(x) AS TRY_CAST(mot_text(x) AS TIMESTAMP);

-- Integral numbers: digits, or a number with no fractional part ("1.0e3"). TRY_CAST alone
-- would round '1.5' to 2, which is exactly the silent corruption we must refuse.
CREATE OR REPLACE TEMP MACRO mot_integral(x) AS
    CASE
        WHEN NOT (contains(x, '.') OR contains(x, 'e') OR contains(x, 'E')) THEN TRY_CAST(trim(x) AS BIGINT)
        WHEN TRY_CAST(trim(x) AS DOUBLE) = trunc(TRY_CAST(trim(x) AS DOUBLE))
             AND abs(TRY_CAST(trim(x) AS DOUBLE)) < 9e15
            THEN CAST(TRY_CAST(trim(x) AS DOUBLE) AS BIGINT)
    END;

-- Odometer readings: any number in INTEGER range, truncated to whole units.
CREATE OR REPLACE TEMP MACRO mot_odometer(x) AS
    CASE
        WHEN TRY_CAST(trim(x) AS DOUBLE) BETWEEN 0 AND 2147483647
            THEN CAST(trunc(TRY_CAST(trim(x) AS DOUBLE)) AS INTEGER)
    END;

-- odometerResultType: 'OK' appears in DVSA examples as a synonym of READ.
CREATE OR REPLACE TEMP MACRO mot_odometer_result(x) AS
    CASE
        WHEN x IN ('READ', 'UNREADABLE', 'NO_ODOMETER') THEN x
        WHEN mot_enum(x) = 'OK' THEN 'READ'
        ELSE replace(mot_enum(x), ' ', '_')
    END;
