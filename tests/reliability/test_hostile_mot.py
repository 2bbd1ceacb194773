"""Fuzzed MOT deliveries: seeded random mutations of real delta containers (the outer zip, its gzip
parts, and the JSON records inside) go through the real staging and apply steps.

Each mutated file must end one of three ways: staged and applied, held, or rejected with a
:class:`DeltaRejected` reason. Never another exception, and never a partial apply: when a file is
not applied, the warehouse's MOT tables are exactly as before.
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import random
import zipfile
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from include.mot import DeltaRejected, apply_delta, delta_file_name, reject, sha256_file, stage_delta
from include.warehouse import migrate
from tools import mot_samples as samples

BASE_DAY = date(2024, 5, 1)
TABLES = ("vehicles", "mot_tests", "mot_defects", "mot_tests_shadowed", "mot_vehicle_events")
LIMITS = {"max_line_bytes": 64 * 1024, "max_decompressed_bytes": 8 * 2**20, "max_ratio": 200}
HOSTILE_VALUES = [
    None,
    "",
    "'); DROP TABLE vehicles; --",
    "\x00",
    "\u202e\ufeff\u200b",
    "A" * 5000,
    -1,
    2**70,
    1e308,
    float("nan"),
    True,
    [],
    {},
    [[[[[]]]]],
    {"nested": {"deeper": [1, 2, {"x": None}]}},
    "2024-02-30",
    "9999-99-99 99:99:99",
    "ＦＵＬＬＷＩＤＴＨ",
]


def records(seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for index in range(6):
        tests = [
            samples.mot_test(
                seed * 1000 + index * 10 + t,
                completed=f"2024-0{1 + t}-1{index} 10:00:00",
                defects=[samples.defect()] if rng.random() < 0.5 else [],
            )
            for t in range(rng.randint(0, 3))
        ]
        out.append(samples.vehicle_record(f"FZ{seed:02d}{index}", rng.choice(["CREATED", "UPDATED"]), tests))
    return out


def _mutate_value(rng: random.Random, record: dict) -> dict:
    record = copy.deepcopy(record)
    targets = [record, *(record.get("motTests") or [])]
    target = rng.choice(targets)
    key = rng.choice([*target.keys(), "unknownField"])
    target[key] = rng.choice(HOSTILE_VALUES)
    return record


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(5)
        position = rng.randrange(len(data) + 1)
        if choice == 0 and data:  # flip a byte
            data[min(position, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif choice == 1:  # truncate
            del data[position:]
        elif choice == 2:  # insert random bytes
            data[position:position] = rng.randbytes(rng.randint(1, 64))
        elif choice == 3 and data:  # duplicate a slice
            end = min(len(data), position + rng.randint(1, 200))
            data[position:position] = data[position:end]
        else:  # insert structure characters
            data[position:position] = rng.choice([b"\n", b"{", b"[" * 40, b'"', b"\\", b"\xff\xfe", b"\x00"])
    return bytes(data)


def mutated_delta(rng: random.Random, seed: int, path: Path) -> str:
    """Write one mutated delivery at ``path``; returns what was mutated (for the failure message)."""
    lines = [json.dumps(r, separators=(",", ":")) for r in records(seed)]
    layer = rng.choice(["record values", "json lines", "gzip part", "zip container"])
    if layer == "record values":
        lines = [json.dumps(_mutate_value(rng, json.loads(line)), separators=(",", ":")) for line in lines]
    elif layer == "json lines":
        index = rng.randrange(len(lines))
        lines[index] = _mutate_bytes(rng, lines[index].encode()).decode("utf-8", "surrogateescape")
    text = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
    half = len(lines) // 2
    parts = [text[: sum(len(x) + 1 for x in lines[:half])], text[sum(len(x) + 1 for x in lines[:half]) :]]
    gz = [gzip.compress(p, compresslevel=1) for p in parts]
    if layer == "gzip part":
        which = rng.randrange(2)
        gz[which] = _mutate_bytes(rng, gz[which])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        for index, member in enumerate(gz, start=1):
            zf.writestr(f"{path.stem}-part{index:03d}.json.gz", member)
    data = buffer.getvalue()
    if layer == "zip container":
        data = _mutate_bytes(rng, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return layer


def tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    return {t: sorted(map(repr, con.execute(f"SELECT * FROM {t}").fetchall())) for t in TABLES}


@pytest.mark.reliability(
    "Hostile input",
    "fuzzed MOT deltas: seeded random byte flips, truncations, insertions in the zip, its gzip parts and the"
    " JSON lines, and hostile values (wrong types, huge numbers, NUL, SQL, bidi) in records",
    "each file is applied, held or rejected with a reason; never an unexpected exception; when not applied the"
    " MOT tables are exactly unchanged (no partial apply)",
)
def test_fuzzed_mot_deltas_are_applied_held_or_rejected_never_half_applied(tmp_path):
    con = duckdb.connect()
    migrate(con)
    base = samples.write_delta_zip(tmp_path / "landing" / delta_file_name(BASE_DAY), records(99))
    staged = stage_delta(base, BASE_DAY, tmp_path / "staging")
    assert apply_delta(con, staged, sha256=staged.sha256, file_name=base.name).status == "APPLIED"

    rng = random.Random(20261201)
    outcomes: dict[str, int] = {}
    for seed in range(40):
        day = BASE_DAY + timedelta(days=1 + seed)
        path = tmp_path / "landing" / delta_file_name(day)
        layer = mutated_delta(rng, seed, path)
        before = tables(con)
        sha256 = sha256_file(path)
        try:
            staged = stage_delta(path, day, tmp_path / "staging" / str(seed), sha256=sha256, **LIMITS)
        except DeltaRejected as exc:
            result = reject(con, business_date=day, file_name=path.name, sha256=sha256, error=exc)
        except Exception as exc:
            pytest.fail(f"seed {seed} ({layer}): staging raised {type(exc).__name__}: {exc}")
        else:
            try:
                # Odd seeds as an operator's release after review: any share of quarantined records applies.
                share = 1.0 if seed % 2 else 0.01
                result = apply_delta(con, staged, sha256=sha256, file_name=path.name, max_quarantine_share=share)
            except Exception as exc:
                pytest.fail(f"seed {seed} ({layer}): apply raised {type(exc).__name__}: {exc}")
        assert result.status in {"APPLIED", "HELD", "REJECTED"}, (seed, layer, result)
        if result.status != "APPLIED":
            assert tables(con) == before, (seed, layer, result)
        status = con.execute(
            "SELECT status FROM mot_delta_files WHERE business_date = ? AND kind = 'delta'", [day]
        ).fetchone()
        assert status == (result.status,), (seed, layer)
        outcomes[f"{layer}:{result.status}"] = outcomes.get(f"{layer}:{result.status}", 0) + 1
    # The mutations reached every layer and produced both rejections and applied/held files.
    assert {key.split(":")[1] for key in outcomes} == {"REJECTED", "APPLIED", "HELD"}, outcomes
    assert con.execute("SELECT count(*) FROM vehicles").fetchone()[0] > 0


@pytest.mark.reliability(
    "Hostile input",
    "MOT JSON line with a repeated key (DuckDB refuses it; Python's json would keep the last value)",
    "the file is rejected with the part and line, not a crash (was an unhandled DuckDB error)",
)
def test_a_repeated_json_key_rejects_the_file_with_its_line(tmp_path):
    good = json.dumps(samples.vehicle_record("DUP1"), separators=(",", ":"))
    repeated = good[:-1] + ',"make":"OTHER"}'
    path = samples.write_delta_zip(tmp_path / delta_file_name(BASE_DAY), [good, good.replace("DUP1", "DUP2"), repeated])
    with pytest.raises(DeltaRejected, match="duplicate key 'make'") as err:
        stage_delta(path, BASE_DAY, tmp_path / "staging")
    assert err.value.line == 3 and err.value.part.endswith(".json.gz")


@pytest.mark.reliability(
    "Hostile input",
    "zip slip: MOT zip members named ../../x.json.gz or /abs/x.json.gz",
    "parts are read as streams and staged under generated names: nothing is written outside the staging folder",
)
def test_zip_member_names_never_become_paths(tmp_path):
    lines = [json.dumps(samples.vehicle_record(f"ZS{i}"), separators=(",", ":")) for i in range(2)]
    outside = tmp_path / "outside"
    members = ["../../outside/escape-part001.json.gz", f"{outside}/abs-part002.json.gz"]
    path = tmp_path / "landing" / delta_file_name(BASE_DAY)
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as zf:
        for name, line in zip(members, lines, strict=True):
            zf.writestr(name, gzip.compress((line + "\n").encode()))
    staging = tmp_path / "deep" / "er" / "staging"
    staged = stage_delta(path, BASE_DAY, staging)
    assert staged.records == 2
    written = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert all(p == path or staging in p.parents for p in written), sorted(map(str, written))
    assert not outside.exists()
