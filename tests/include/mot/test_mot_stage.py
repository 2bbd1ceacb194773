"""Staging: parse, flatten, normalise, validate and quarantine (no warehouse involved)."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from include.mot import DeltaRejected, stage_delta
from include.mot.stage import StagedDelta
from tools import mot_samples as samples

D = date(2024, 3, 1)


def stage(tmp_path: Path, records, *, parts: int = 1, **kwargs) -> StagedDelta:
    path = samples.write_delta_zip(tmp_path / "in" / "delta-light-vehicle_01-03-2024.zip", records, parts=parts)
    return stage_delta(path, D, tmp_path / "staging", **kwargs)


def rows(paths: list[str], order: str = "rec") -> list[dict]:
    con = duckdb.connect()
    cursor = con.execute(f"SELECT * FROM read_parquet({[str(p) for p in paths]}) ORDER BY {order}")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def quarantine(staged: StagedDelta) -> list[dict]:
    return rows(staged.quarantine, "part, line") if staged.quarantine else []


def test_full_record_is_flattened_and_typed(tmp_path):
    record = samples.vehicle_record(
        "SN97PLP",
        "UPDATED",
        [
            samples.mot_test(
                971577975522,
                completed="2016-06-21 11:26:02",
                reg_at_test="SE34BUW",
                defects=[samples.defect("Brake", "ADVISORY"), samples.defect("Tyre", "DANGEROUS", True)],
            )
        ],
    )
    staged = stage(tmp_path, [record])
    assert (staged.records, staged.accepted, staged.quarantined) == (1, 1, 0)
    (vehicle,) = rows(staged.vehicles)
    assert vehicle["registration"] == "SN97PLP"
    assert vehicle["modification"] == "UPDATED"
    assert vehicle["first_used_date"] == date(2003, 3, 27)
    assert vehicle["last_mot_test_date"] == datetime(2024, 3, 1, 10, 15)
    assert vehicle["line"] == 1
    (test,) = rows(staged.tests)
    assert test["mot_test_number"] == 971577975522
    assert test["registration_at_time_of_test"] == "SE34BUW"
    assert test["completed_date"] == datetime(2016, 6, 21, 11, 26, 2)
    assert test["odometer_value"] == 42366
    defects = rows(staged.defects, "type")
    assert [(d["type"], d["dangerous"]) for d in defects] == [("ADVISORY", False), ("DANGEROUS", True)]


def test_both_field_name_variants_are_accepted(tmp_path):
    records = [
        samples.vehicle_record("A1", "CREATED", [samples.mot_test(1, reg_at_test="OLD1")]),
        samples.vehicle_record(
            "A2",
            "DELETED",
            [samples.mot_test(2, reg_at_test="OLD2", reg_field="registrationAtTimeOfTest")],
            modification_field="last_modification",
        ),
    ]
    staged = stage(tmp_path, records)
    assert staged.quarantined == 0
    assert [v["modification"] for v in rows(staged.vehicles)] == ["CREATED", "DELETED"]
    assert [t["registration_at_time_of_test"] for t in rows(staged.tests)] == ["OLD1", "OLD2"]


def test_unknown_fields_and_missing_optional_fields_do_not_break(tmp_path):
    minimal = {"registration": "MIN1", "modification": "CREATED"}
    extra = samples.vehicle_record(
        "EXT1",
        "CREATED",
        [samples.mot_test(5, brandNewField={"nested": [1, 2, 3]}, defects=[{**samples.defect(), "severity": 3}])],
        futureField="x",
        anotherOne=[{"a": 1}],
    )
    sparse_test = samples.vehicle_record("SPR1", "CREATED", [{"motTestNumber": 7}])
    staged = stage(tmp_path, [minimal, extra, sparse_test])
    assert staged.quarantined == 0, quarantine(staged)
    vehicles = rows(staged.vehicles)
    assert vehicles[0]["registration"] == "MIN1" and vehicles[0]["make"] is None
    assert sorted(t["mot_test_number"] for t in rows(staged.tests)) == [5, 7]


def test_enumerations_are_normalised_for_case(tmp_path):
    record = samples.vehicle_record(
        "en 12 abc",
        "updated",
        [
            samples.mot_test(1, result="passed", unit="mi", result_type="ok", data_source="dvsa"),
            samples.mot_test(
                2, result="Failed", unit="km", result_type="unreadable", odometer=None, data_source="DVA NI"
            ),
            samples.mot_test(3, unit=None, result_type="NO_ODOMETER", odometer="", data_source="cvs"),
        ],
        data_source="dvla",
    )
    staged = stage(tmp_path, [record])
    assert staged.quarantined == 0, quarantine(staged)
    (vehicle,) = rows(staged.vehicles)
    assert (vehicle["registration"], vehicle["modification"], vehicle["data_source"]) == ("EN12ABC", "UPDATED", "DVLA")
    tests = rows(staged.tests, "mot_test_number")
    assert [(t["test_result"], t["odometer_unit"], t["odometer_result_type"], t["data_source"]) for t in tests] == [
        ("PASSED", "MI", "READ", "DVSA"),
        ("FAILED", "KM", "UNREADABLE", "DVA NI"),
        ("PASSED", None, "NO_ODOMETER", "CVS"),
    ]


BAD = {
    "no registration": samples.vehicle_record("", "CREATED"),
    "bad modification": samples.vehicle_record("B2", "CHANGED"),
    "bad date": samples.vehicle_record("B3", "CREATED", first_used="2003-02-30"),
    "fractional test number": samples.vehicle_record("B4", "CREATED", [samples.mot_test("12.5")]),
    "missing test number": samples.vehicle_record("B5", "CREATED", [samples.mot_test(None)]),
    "odometer not numeric": samples.vehicle_record("B6", "CREATED", [samples.mot_test(6, odometer="lots")]),
    "bad completed date": samples.vehicle_record("B7", "CREATED", [samples.mot_test(7, completed="yesterday")]),
    "unknown test result": samples.vehicle_record("B8", "CREATED", [samples.mot_test(8, result="MAYBE")]),
    "dangerous not boolean": samples.vehicle_record(
        "B9", "CREATED", [samples.mot_test(9, defects=[samples.defect(dangerous="perhaps")])]
    ),
    "duplicate test in record": samples.vehicle_record("BA", "CREATED", [samples.mot_test(10), samples.mot_test(10)]),
}


def test_bad_records_are_quarantined_with_reason_part_and_line(tmp_path):
    good = [samples.vehicle_record(f"G{i}", "CREATED", [samples.mot_test(1000 + i)]) for i in range(10)]
    records = good[:5] + list(BAD.values()) + good[5:]
    staged = stage(tmp_path, records, parts=2)
    assert staged.records == 20
    assert staged.quarantined == len(BAD)
    assert staged.accepted == 10
    assert sorted(v["registration"] for v in rows(staged.vehicles)) == sorted(f"G{i}" for i in range(10))
    assert {t["mot_test_number"] for t in rows(staged.tests)} == {1000 + i for i in range(10)}
    found = quarantine(staged)
    assert len(found) == len(BAD)
    # parts of 10 records each: the bad ones are lines 6-10 of part 1 and 1-5 of part 2
    locations = [(q["part"].rsplit("-", 1)[1], q["line"]) for q in found]
    assert locations == [("part001.json.gz", n) for n in range(6, 11)] + [("part002.json.gz", n) for n in range(1, 6)]
    by_reg = {q["registration"]: q for q in found}
    assert "registration" in by_reg[""]["reason"]
    assert "modification" in by_reg["B2"]["reason"]
    assert "first_used_date" in by_reg["B3"]["reason"]
    assert "mot_test_number" in by_reg["B4"]["reason"]
    assert "mot_test_number" in by_reg["B5"]["reason"]
    assert "odometer" in by_reg["B6"]["reason"]
    assert "completed_date" in by_reg["B7"]["reason"]
    assert "test_result" in by_reg["B8"]["reason"]
    assert "dangerous" in by_reg["B9"]["reason"]
    assert "BA" in by_reg and by_reg["BA"]["reason"]
    assert '"registration":"B3"' in by_reg["B3"]["record"]


def test_wrong_shapes_are_quarantined_not_fatal(tmp_path):
    records = [
        samples.vehicle_record("OK1", "CREATED", [samples.mot_test(1)]),
        {**samples.vehicle_record("S1", "CREATED"), "motTests": "not a list"},
        samples.vehicle_record("S2", "CREATED", [{**samples.mot_test(2), "defects": "none"}]),
        samples.vehicle_record("S3", "CREATED", [17]),
        samples.vehicle_record("S4", "CREATED", [samples.mot_test(4, defects=["not an object"])]),
    ]
    staged = stage(tmp_path, records)
    assert [v["registration"] for v in rows(staged.vehicles)] == ["OK1"]
    assert [q["registration"] for q in quarantine(staged)] == ["S1", "S2", "S3", "S4"]
    assert "not a list" in quarantine(staged)[0]["reason"]


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"registration": "X", ', "invalid JSON"),
        ("[1, 2, 3]", "line is a JSON array, not an object"),
        ("plain text", "invalid JSON"),
    ],
)
def test_a_line_that_is_not_json_rejects_the_file_with_part_and_line(tmp_path, bad_line, message):
    records = [samples.vehicle_record(f"R{i}") for i in range(6)]
    records.insert(4, bad_line)  # part 2 holds records 4..6 -> the bad line is its line 1
    with pytest.raises(DeltaRejected, match=message) as err:
        stage(tmp_path, records, parts=2)
    assert err.value.part.endswith("part002.json.gz")
    assert err.value.line == 1
    assert not any((tmp_path / "staging").rglob("*.parquet"))


BOM = "\ufeff"


@pytest.mark.reliability(
    "Hostile input",
    "MOT lines where Python's and DuckDB's JSON parsers disagree (byte order marks, unpaired surrogate"
    " escapes, trailing commas)",
    "a line DuckDB refuses rejects the file with its part and line and a specific reason, never a raw"
    " engine error; a line DuckDB reads is not blamed for a later broken one",
)
def test_lines_the_two_json_parsers_disagree_on_are_judged_by_duckdb(tmp_path):
    # a byte order mark opening a part is what Windows tools write: skipped, also on a line of its own
    staged = stage(tmp_path / "bom", [BOM + json.dumps(samples.vehicle_record("B1")), samples.vehicle_record("B2")])
    assert [(v["registration"], v["line"]) for v in rows(staged.vehicles)] == [("B1", 1), ("B2", 2)]
    staged = stage(tmp_path / "bom_alone", [BOM, "\x0b", samples.vehicle_record("B1")])
    assert [(v["registration"], v["line"]) for v in rows(staged.vehicles)] == [("B1", 3)]
    # a part cut into many segments: the mark is accepted on the part's first line only, and a
    # later one is refused even where it opens a segment file (which DuckDB alone would accept)
    marked = [BOM + json.dumps(samples.vehicle_record(f"M{i}")) for i in range(3)]
    staged = stage(tmp_path / "bom_segments", [marked[0], samples.vehicle_record("M1")], segment_bytes=64)
    assert [(v["registration"], v["line"]) for v in rows(staged.vehicles)] == [("M0", 1), ("M1", 2)]
    with pytest.raises(DeltaRejected, match="order mark") as err:
        stage(tmp_path / "bom_segment_start", marked, segment_bytes=64)
    assert err.value.line == 2
    # DuckDB reads a trailing comma, Python's parser does not
    trailing = json.dumps(samples.vehicle_record("T1"))[:-1] + ", }"
    staged = stage(tmp_path / "comma", [samples.vehicle_record("T0"), trailing])
    assert [v["registration"] for v in rows(staged.vehicles)] == ["T0", "T1"]

    lone = json.dumps(samples.vehicle_record("S1", make="@")).replace('"@"', '"FO\\ud800RD"')
    paired = json.dumps(samples.vehicle_record("S2", make="@")).replace('"@"', '"\\ud83d\\ude97"')
    repeated_unread = json.dumps(samples.vehicle_record("R1", futureField=1))[:-1] + ', "futureField": 2}'
    broken = '{"registration": "X", '
    refused = {
        "bom_later": ([samples.vehicle_record("X0"), BOM + json.dumps(samples.vehicle_record("X1"))], 2, "order mark"),
        "bom_after_blank": (
            [samples.vehicle_record("X0"), " " + BOM + json.dumps(samples.vehicle_record("X1"))],
            2,
            "BOM",
        ),
        "lone_surrogate": ([paired, lone], 2, r"unpaired UTF-16 surrogate escape \\ud800"),
        "surrogate_bytes": ([paired, lone.replace("\\ud800", "\ud800")], 2, "can't decode"),
        # lines DuckDB reads, before a broken one: not blamed
        "broken_after_comma": ([trailing, broken], 2, "invalid JSON: Expecting"),
        "broken_after_bom_line": ([BOM, samples.vehicle_record("X0"), broken], 3, "invalid JSON: Expecting"),
        "broken_after_unread_repeated_key": ([repeated_unread, broken], 2, "invalid JSON: Expecting"),
    }
    for name, (lines, line, message) in refused.items():
        with pytest.raises(DeltaRejected, match=message) as err:
            stage(tmp_path / name, lines)
        assert (err.value.part.endswith("part001.json.gz"), err.value.line) == (True, line), name
        assert not any((tmp_path / name / "staging").rglob("*.parquet")), name


DEEP = "[" * 100_000 + "]" * 100_000  # far beyond any recursive parser's stack


def _deep_lines() -> list[str]:
    """Two records nested 100,000 levels deep: in an unknown field, and as a test's ``testResult``."""
    unknown = json.dumps(samples.vehicle_record("DEEP1", "CREATED", [samples.mot_test(1)], futureField="@"))
    in_value = json.dumps(samples.vehicle_record("DEEP2", "CREATED", [samples.mot_test(2, result="@")]))
    return [unknown.replace('"@"', DEEP), in_value.replace('"@"', DEEP)]


@pytest.mark.reliability(
    "Hostile input",
    "deeply nested JSON in an MOT record (100,000 levels)",
    "a deep unknown field is ingested like any unknown field, a deep value where text belongs is quarantined"
    " by the schema, and a broken line after deep ones is the line blamed",
)
def test_deep_nesting_neither_breaks_ingestion_nor_takes_the_blame_for_a_broken_line(tmp_path):
    staged = stage(tmp_path / "ok", [*_deep_lines(), samples.vehicle_record("FLAT1", "CREATED", [samples.mot_test(3)])])
    assert [v["registration"] for v in rows(staged.vehicles)] == ["DEEP1", "FLAT1"]
    assert sorted(t["mot_test_number"] for t in rows(staged.tests)) == [1, 3]
    (held,) = quarantine(staged)
    assert held["registration"] == "DEEP2" and held["line"] == 2 and "test_result" in held["reason"]

    broken_lines = {
        "broken": ('{"registration": "X", ', "invalid JSON"),
        "deep_unclosed": ('{"registration": "X", "x": ' + DEEP[:-1] + "}", "invalid JSON"),
        "deep_array": (DEEP, "JSON array, not an object"),
        "deep_repeated_key": (
            '{"registration": "X", "registration": "Y", "x": ' + DEEP + "}",
            "duplicate key 'registration'",
        ),
    }
    for name, (bad, message) in broken_lines.items():
        with pytest.raises(DeltaRejected, match=message) as err:
            stage(tmp_path / name, [*_deep_lines(), bad])
        assert err.value.line == 3, name


def test_staging_is_idempotent_and_reloadable(tmp_path):
    first = stage(tmp_path, [samples.vehicle_record("A1")])
    again = stage_delta(Path(first.directory).parents[2].parent / "in" / first.file_name, D, tmp_path / "staging")
    assert again == first
    assert StagedDelta.load(first.directory) == first
    assert StagedDelta.from_dict(first.to_dict()) == first


def test_bare_gzip_and_jsonl_containers(tmp_path):
    gz = samples.write_json_gz(tmp_path / "delta-light-vehicle_01-03-2024.json.gz", [samples.vehicle_record("G1")])
    jl = samples.write_jsonl(tmp_path / "delta-light-vehicle_01-03-2024.jsonl", [samples.vehicle_record("J1")])
    assert stage_delta(gz, D, tmp_path / "s1").accepted == 1
    assert stage_delta(jl, D, tmp_path / "s2").accepted == 1


@pytest.mark.reliability(
    "Hostile input",
    "An MOT delta file larger than the configured maximum file size",
    "Rejected before anything is read, with the size and the limit in the reason; nothing staged",
)
def test_delta_over_the_file_size_limit_is_rejected(tmp_path):
    records = [samples.vehicle_record(f"S{i}") for i in range(20)]
    path = samples.write_delta_zip(tmp_path / "in" / "delta-light-vehicle_01-03-2024.zip", records)
    size = path.stat().st_size
    with pytest.raises(DeltaRejected, match=f"file is {size} bytes, over the limit of {size - 1} bytes"):
        stage_delta(path, D, tmp_path / "staging", max_file_bytes=size - 1)
    assert not any((tmp_path / "staging").rglob("*.parquet"))
    assert stage_delta(path, D, tmp_path / "staging", max_file_bytes=size).accepted == 20


def test_two_stagings_of_the_same_delivery_at_once_agree(tmp_path):
    """A backfill overlapping a scheduled run stages the same bytes twice: each in its own folder."""
    from concurrent.futures import ThreadPoolExecutor

    records = [samples.vehicle_record(f"C{i}") for i in range(200)]
    path = samples.write_delta_zip(tmp_path / "in" / "delta-light-vehicle_01-03-2024.zip", records, parts=3)
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: stage_delta(path, D, tmp_path / "staging"), range(2))
    assert first.directory == second.directory
    assert (first.records, first.accepted) == (second.records, second.accepted) == (200, 200)
    assert len(rows(first.vehicles)) == 200
    assert StagedDelta.load(first.directory).vehicles == first.vehicles
    leftovers = [p.name for p in Path(first.directory).parent.iterdir() if p != Path(first.directory)]
    assert leftovers == []


def test_normalisation_fast_paths_give_exactly_the_general_result():
    """mot_text, mot_enum_of and mot_odometer_result skip work for values already clean; they must
    agree with the plain definitions on every value, including Unicode spaces that trim() strips."""
    from itertools import product

    from include.mot.parse import staging_connection

    pieces = [" ", "a", "É", "\u00a0", "\u3000", "\u2009", "\t", "\u200b", "ok", "OK", "read", "READ", "x y"]
    values = ["".join(p) for n in range(4) for p in product(pieces, repeat=n)] + [None]
    con = staging_connection(threads=1)
    con.execute("CREATE TEMP TABLE v AS SELECT unnest($values) AS x", {"values": values})
    disagreeing = con.execute(
        """
        SELECT x FROM v
        WHERE mot_text(x) IS DISTINCT FROM nullif(trim(x), '')
           OR mot_enum_of(x, ['OK', 'READ', 'X Y']) IS DISTINCT FROM mot_enum(x)
           OR mot_odometer_result(x) IS DISTINCT FROM
              CASE WHEN mot_enum(x) = 'OK' THEN 'READ' ELSE replace(mot_enum(x), ' ', '_') END
        """
    ).fetchall()
    assert len(values) > 2000
    assert disagreeing == []
