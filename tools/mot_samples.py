"""Builders for sample MOT delta records and files, shared by the tests and the demo.

The records follow the published delta format (see ``shared/spec/mot-delta-file-format.txt``):
one complete vehicle per line, camelCase field names, ``motTests[]`` with ``defects[]``. The
helpers write the same containers DVSA ships (a zip of ``*.json.gz`` JSON-lines parts), so a
test exercises the real unpacking code rather than a shortcut.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import zipfile
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

Record = dict[str, Any]


def defect(
    text: str = "Brake pad(s) wearing thin (1.1.13 (a) (ii))", type_: str = "ADVISORY", dangerous: bool = False
) -> dict:
    """One defect as it appears inside ``motTests[].defects``."""
    return {"dangerous": dangerous, "text": text, "type": type_}


def mot_test(
    number: int,
    *,
    completed: str = "2024-03-01 10:15:00",
    result: str = "PASSED",
    expiry: str | None = "2025-03-10",
    odometer: str | None = "42366",
    unit: str | None = "MI",
    result_type: str = "READ",
    reg_at_test: str | None = None,
    reg_field: str = "regMarkTimeOfTest",
    data_source: str = "DVSA",
    defects: Sequence[dict] = (),
    **extra: Any,
) -> Record:
    """One MOT test; ``reg_field`` picks which of the two published names carries the plate."""
    test: Record = {
        "completedDate": completed,
        "motTestNumber": number,
        "dataSource": data_source,
        "expiryDate": expiry,
        "testResult": result,
        "odometerValue": odometer,
        "odometerUnit": unit,
        "odometerResultType": result_type,
        "defects": list(defects),
    }
    if reg_at_test is not None:
        test[reg_field] = reg_at_test
    test.update(extra)
    return test


def vehicle_record(
    registration: str,
    modification: str = "CREATED",
    tests: Sequence[Record] = (),
    *,
    modification_field: str = "modification",
    make: str = "HILLMAN",
    model: str = "AVENGER",
    primary_colour: str = "Beige",
    secondary_colour: str | None = None,
    fuel_type: str = "Petrol",
    engine_size: str | None = "1461",
    first_used: str | None = "2003-03-27",
    registration_date: str | None = "2003-03-27",
    manufacture_date: str | None = "2003-03-27",
    last_mot_test: str | None = "2024-03-01 10:15:00",
    data_source: str = "dvsa",
    **extra: Any,
) -> Record:
    """One complete vehicle record; ``modification_field`` may be ``last_modification`` too.

    Keyword ``extra`` adds (or, with value ``None`` under a known name, still sets) fields, so a
    test can add unknown fields or break a value without rebuilding the whole dict.
    """
    record: Record = {
        "registration": registration,
        "firstUsedDate": first_used,
        "registrationDate": registration_date,
        "manufactureDate": manufacture_date,
        "primaryColour": primary_colour,
        "secondaryColour": secondary_colour,
        "engineSize": engine_size,
        "model": model,
        "make": make,
        "fuelType": fuel_type,
        "lastMotTestDate": last_mot_test,
        "dataSource": data_source,
        modification_field: modification,
        "motTests": list(tests),
    }
    record.update(extra)
    return record


def _jsonl_bytes(lines: Iterable[Record | str]) -> bytes:
    out = io.StringIO()
    for line in lines:
        out.write(line if isinstance(line, str) else json.dumps(line, separators=(",", ":")))
        out.write("\n")
    # surrogatepass: a test may write the bytes of a lone surrogate, which a producer could emit
    return out.getvalue().encode("utf-8", "surrogatepass")


def _split(records: Sequence[Record | str], parts: int) -> list[Sequence[Record | str]]:
    parts = max(1, parts)
    size = -(-len(records) // parts) if records else 0
    return [records[i * size : (i + 1) * size] for i in range(parts)]


def write_delta_zip(path: str | Path, records: Sequence[Record | str], parts: int = 1) -> Path:
    """A zip of ``parts`` gzip JSON-lines members, as DVSA delivers; str items are written raw."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for index, chunk in enumerate(_split(list(records), parts), start=1):
            zf.writestr(f"{path.stem}-part{index:03d}.json.gz", gzip.compress(_jsonl_bytes(chunk), compresslevel=1))
    return path


def write_json_gz(path: str | Path, records: Sequence[Record | str]) -> Path:
    """A bare gzip JSON-lines file (the alternative container the pipeline accepts)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(_jsonl_bytes(records), compresslevel=1))
    return path


def write_jsonl(path: str | Path, records: Sequence[Record | str]) -> Path:
    """A plain JSON-lines file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_jsonl_bytes(records))
    return path


_MAKES = [("FORD", "FIESTA"), ("VAUXHALL", "CORSA"), ("VOLKSWAGEN", "GOLF"), ("BMW", "320D"), ("TOYOTA", "YARIS")]
_COLOURS = ["Blue", "Red", "Silver", "Black", "White", "Grey"]
_DEFECTS = [
    ("Nearside Front Tyre worn close to legal limit (5.2.3 (e))", "ADVISORY"),
    ("Offside Rear Brake pad(s) less than 1.5 mm thick (1.1.13 (a) (ii))", "MAJOR"),
    ("Windscreen has damage to an area less than a 10mm circle within zone 'A'", "MINOR"),
    ("Oil leak, but not excessive", "ADVISORY"),
]


def synthetic_records(count: int, *, seed: int = 7, tests_per_vehicle: int = 6, start: int = 0) -> list[Record]:
    """Realistic-looking vehicles for throughput measurements (sizes close to real records)."""
    rng = random.Random(seed)
    records = []
    for i in range(start, start + count):
        make, model = rng.choice(_MAKES)
        first = date(2005, 1, 1) + timedelta(days=rng.randrange(6000))
        tests = []
        for t in range(rng.randrange(1, 2 * tests_per_vehicle)):
            completed = first + timedelta(days=365 * (t + 3) + rng.randrange(30))
            defects = [defect(*rng.choice(_DEFECTS)) for _ in range(rng.randrange(4))]
            tests.append(
                mot_test(
                    (i + 1) * 100 + t,
                    completed=f"{completed} 10:{rng.randrange(60):02d}:00",
                    result=rng.choice(["PASSED", "FAILED"]),
                    expiry=str(completed + timedelta(days=365)),
                    odometer=str(10000 * (t + 1) + rng.randrange(9000)),
                    reg_at_test=f"SYN{i:07d}",
                    defects=defects,
                )
            )
        records.append(
            vehicle_record(
                f"SYN{i:07d}",
                rng.choice(["CREATED", "UPDATED"]),
                tests,
                make=make,
                model=model,
                primary_colour=rng.choice(_COLOURS),
                first_used=str(first),
                registration_date=str(first),
                manufacture_date=str(first),
                last_mot_test=tests[-1]["completedDate"],
            )
        )
    return records
