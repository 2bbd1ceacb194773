"""Realistic MOT history deliveries at any size: a zip of gzip JSON-lines parts, as DVSA ships.

Each vehicle is a pure function of (seed, index), so the same vehicle has the same history in every
file: a base load and a later delta that updates part of it agree, as real files do.

What is drawn "like real histories":

* UK plates (current ``AB12CDE`` style after September 2001, prefix ``A123BCD`` before), a make
  and model mix close to the GB fleet, fuel, engine size, colour; a few private-plate transfers
  (older tests carry the earlier plate) and records naming it ``registrationAtTimeOfTest``.
* Fleet age: 3 years + Gamma(2, 3.5) years (mean ~10) for vehicles in a delta because of a test,
  plus brand-new registrations (no tests yet, CREATED).
* One test a year from the third anniversary, taken up to four weeks early, the odd year missed;
  the failure rate rises with age (18% + 1.2 points a year), a failed test is followed by retests
  within days. Defects: advisories grow with age, failures carry major or dangerous items, and
  tests before 20 May 2018 use the old FAIL/PRS/ADVISORY types. Odometers grow ~7,400 mi/year
  with per-vehicle spread; a few readings are km, unreadable or absent.
* Tests newest first, as the MOT history API returns them. ~3.6 KB of JSON per vehicle.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import random
import zipfile
from datetime import date, timedelta
from pathlib import Path

DELTA_DAY = date(2026, 11, 2)
NEW_RULES = date(2018, 5, 20)  # defect categories changed (MINOR/MAJOR/DANGEROUS)
_LETTERS = "ABCDEFGHJKLMNOPRSTUVWXYZ"  # no I or Q on plates
_AGE_LETTERS = "ABCDEFGHJKLMNPRSTVWXY"  # prefix-style year letters (1983-2001)

# (make, model, weight, fuel) ; fuel None: petrol or diesel by the usual split
_FLEET = [
    ("FORD", "FIESTA", 6.0, None),
    ("FORD", "FOCUS", 5.0, None),
    ("VAUXHALL", "CORSA", 5.0, None),
    ("VAUXHALL", "ASTRA", 4.0, None),
    ("VOLKSWAGEN", "GOLF", 4.0, None),
    ("VOLKSWAGEN", "POLO", 3.0, None),
    ("NISSAN", "QASHQAI", 3.0, None),
    ("BMW", "3 SERIES", 2.0, None),
    ("MERCEDES-BENZ", "C CLASS", 2.0, None),
    ("TOYOTA", "YARIS", 2.0, None),
    ("AUDI", "A3", 2.0, None),
    ("KIA", "SPORTAGE", 2.0, None),
    ("PEUGEOT", "208", 2.0, None),
    ("MINI", "COOPER", 2.0, "Petrol"),
    ("RENAULT", "CLIO", 2.0, None),
    ("HONDA", "CIVIC", 1.0, None),
    ("TOYOTA", "PRIUS", 0.8, "Hybrid Electric (Clean)"),
    ("TESLA", "MODEL 3", 0.5, "Electric"),
    ("NISSAN", "LEAF", 0.5, "Electric"),
]
_FLEET_WEIGHTS = [f[2] for f in _FLEET]
_COLOURS = ["Black", "Silver", "Blue", "Grey", "White", "Red", "Green", "Bronze", "Yellow", "Purple", "Beige"]
_COLOUR_WEIGHTS = [20, 17, 15, 15, 13, 12, 2, 2, 1, 1, 1]
_ENGINES = {
    "Petrol": ["998", "1198", "1398", "1598", "1995"],
    "Diesel": ["1461", "1560", "1598", "1968", "2143"],
    "Hybrid Electric (Clean)": ["1798"],
    "Electric": [None],
}
_ADVISORY = [
    "Nearside Front Tyre worn close to legal limit/worn on edge (5.2.3 (e))",
    "Offside Rear Brake disc worn, pitted or scored, but not seriously weakened (1.1.14 (a) (ii))",
    "Oil leak, but not excessive (8.4.1 (a) (i))",
    "Front Brake pad(s) wearing thin (1.1.13 (a) (ii))",
    "Nearside Rear Tyre slightly damaged/cracking or perishing (5.2.3 (d) (ii))",
    "Underside Corroded but not seriously weakened",
    "Exhaust has a minor leak of exhaust gases (6.1.2 (a))",
    "Windscreen has damage to an area less than a 10mm circle within zone 'A'",
    "Offside Front Suspension arm pin or bush worn but not resulting in excessive movement (5.3.4 (a))",
]
_MINOR = [
    "Nearside Registration plate lamp inoperative in the case of multiple lamps or light sources (4.7.1 (b) (i))",
    "Engine mounting deteriorated (6.1.1 (a))",
    "Offside Front Drop link has slight play in a ball joint (5.3.4 (a) (i))",
]
_MAJOR = [
    "Nearside Front Tyre tread depth below requirements of 1.6mm (5.2.3 (e))",
    "Offside Headlamp aim too high (4.1.2 (a))",
    "Nearside Front Coil spring fractured or seriously weakened (5.3.1 (b) (i))",
    "Front Brake pad(s) less than 1.5 mm thick (1.1.13 (a) (ii))",
    "Offside Rear Position lamp(s) not working (4.2.1 (a) (ii))",
    "Wiper blade defective (3.4 (b))",
]
_DANGEROUS = [
    "Nearside Front Tyre has a cut in excess of the requirements deep enough to reach the ply or cords (5.2.3 (b))",
    "Offside Front Brake pipe excessively corroded (1.1.11 (c))",
]
_OLD_FAIL = [
    "Nearside Front Tyre tread depth below requirements of 1.6mm (4.1.E.1)",
    "Offside Front Anti-roll bar linkage ball joint dust cover no longer prevents the ingress of dirt (2.2.D.2e)",
    "Nearside Headlamp aim too high (1.8.A.1a)",
]
_TEST_MOD = 9 * 10**11
_TEST_MUL = 7919 * 104729  # coprime with 2, 3, 5: a bijection on [0, _TEST_MOD)


def registration(index: int, first_used: date) -> str:
    """A unique plate for ``index``, in the style of the vehicle's first registration date."""
    if first_used >= date(2001, 9, 1):
        age = first_used.year % 100 + (50 if first_used.month >= 9 else 0)
        if first_used.month < 3:
            age = (first_used.year - 1) % 100 + 50
        area = _LETTERS[index % 23] + _LETTERS[(index // 23) % 23]
        rest = index // 529
        suffix = _LETTERS[rest % 23] + _LETTERS[(rest // 23) % 23] + _LETTERS[(rest // 529) % 23]
        return f"{area}{age:02d}{suffix}"
    year_letter = _AGE_LETTERS[min(max(first_used.year - 1983, 0), len(_AGE_LETTERS) - 1)]
    number = index % 999 + 1
    rest = index // 999
    suffix = _LETTERS[rest % 23] + _LETTERS[(rest // 23) % 23] + _LETTERS[(rest // 529) % 23]
    return f"{year_letter}{number}{suffix}"


_DAY_TEXT: dict[int, str] = {}
_TIMES = [f" {h:02d}:{m:02d}:{sec:02d}" for h in range(8, 18) for m in range(60) for sec in (7, 19, 33, 48)]
_NEW_RULES = NEW_RULES.toordinal()


def _day(ordinal: int) -> str:
    text = _DAY_TEXT.get(ordinal)
    if text is None:
        text = _DAY_TEXT[ordinal] = date.fromordinal(ordinal).isoformat()
    return text


def _pick(rng: random.Random, values: list):
    return values[int(rng.random() * len(values))]


def _defect(rng: random.Random, kind: str, old_rules: bool) -> dict:
    if kind == "ADVISORY":
        return {"dangerous": False, "text": _pick(rng, _ADVISORY), "type": "ADVISORY"}
    if old_rules:
        return {"dangerous": False, "text": _pick(rng, _OLD_FAIL), "type": "FAIL" if kind != "PRS" else "PRS"}
    if kind == "DANGEROUS":
        return {"dangerous": True, "text": _pick(rng, _DANGEROUS), "type": "DANGEROUS"}
    return {"dangerous": False, "text": _pick(rng, _MINOR if kind == "MINOR" else _MAJOR), "type": kind}


def _poisson(rng: random.Random, lam: float) -> int:
    count, p, threshold = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= threshold:
            return count
        count += 1


def _tests(rng: random.Random, index: int, first_used: date, last: date, plate: str, old_plate: str | None) -> list:
    """Annual tests from the third anniversary, the last one on ``last``; newest first."""
    tests: list[dict] = []
    rand = rng.random
    first, final = first_used.toordinal(), last.toordinal()
    miles_a_day = max(1500.0, rng.gauss(7400, 2800)) / 365.25
    km = rand() < 0.03
    unit = "KM" if km else "MI"
    per_day = miles_a_day * (1.609 if km else 1.0)
    transfer = first + 365 * 3 + int(rand() * max(1, final - first - 365 * 3))
    reg_field = "registrationAtTimeOfTest" if rand() < 0.15 else "regMarkTimeOfTest"
    years = (final - first) // 365
    expiry: int | None = None
    seq = 0
    for age in range(3, years + 1):
        if age < years and rand() < 0.03:
            continue  # off the road that year
        day = final if age == years else first + 365 * age - int(rand() * 28)
        passed = False
        attempt = 0
        while not passed and attempt < 4:
            p_fail = min(0.45, 0.18 + 0.012 * age) if attempt == 0 else 0.12
            passed = rand() >= p_fail
            old_rules = day < _NEW_RULES
            defects = [_defect(rng, "ADVISORY", old_rules) for _ in range(min(8, _poisson(rng, 0.3 + 0.09 * age)))]
            if passed:
                defects += [_defect(rng, "MINOR", old_rules) for _ in range(_poisson(rng, 0.15))]
                if rand() < 0.05:
                    defects.append(_defect(rng, "PRS", old_rules))
                anniversary = expiry is not None and 0 <= expiry - day <= 30
                expiry = expiry + 365 if anniversary else day + 364
            else:
                defects += [_defect(rng, "MAJOR", old_rules) for _ in range(1 + _poisson(rng, 0.6))]
                if rand() < 0.08:
                    defects.append(_defect(rng, "DANGEROUS", old_rules))
            roll = rand()
            odometer_type = "READ" if roll >= 0.015 else ("UNREADABLE" if roll < 0.01 else "NO_ODOMETER")
            read = odometer_type == "READ"
            tests.append(
                {
                    "completedDate": _day(day) + _pick(rng, _TIMES),
                    "motTestNumber": 10**11 + ((index * 256 + seq) * _TEST_MUL) % _TEST_MOD,
                    "dataSource": "DVSA",
                    "expiryDate": _day(expiry) if passed else None,
                    reg_field: old_plate if old_plate and day < transfer else plate,
                    "testResult": "PASSED" if passed else "FAILED",
                    "odometerValue": str(int(per_day * (day - first))) if read else None,
                    "odometerUnit": unit if read else None,
                    "odometerResultType": odometer_type,
                    "defects": defects,
                }
            )
            seq += 1
            attempt += 1
            if not passed:
                day += 1 + int(rand() * 10)
                if day > final:
                    break
    tests.reverse()
    return tests


def vehicle(
    index: int, *, seed: int = 11, day: date = DELTA_DAY, as_of: date | None = None, brand_new: bool = False
) -> dict:
    """Vehicle ``index`` as known on ``as_of`` (default ``day``); tested on ``day`` unless brand new."""
    rng = random.Random(seed * 1_000_003 + index)
    make, model, _, fuel = rng.choices(_FLEET, _FLEET_WEIGHTS)[0]
    fuel = fuel or ("Petrol" if rng.random() < 0.58 else "Diesel")
    if brand_new:
        first_used = day - timedelta(days=rng.randrange(60))
        years = 0
    else:
        years = 3 + min(42, int(rng.gammavariate(2.0, 3.5)))
        first_used = day - timedelta(days=365 * years - rng.randrange(28))
    plate = registration(index, first_used)
    old_plate = None
    if rng.random() < 0.04:  # private plate moved onto or off the vehicle at some point
        old_plate = f"{_LETTERS[index % 23]}{_LETTERS[(index // 23) % 23]}{index // 529 % 9999 + 1}"
    tests = [] if brand_new else _tests(rng, index, first_used, day, plate, old_plate)
    if as_of is not None and as_of < day:
        tests = [t for t in tests if t["completedDate"][:10] <= str(as_of)]
    imported = rng.random() < 0.02
    record = {
        "registration": plate,
        "firstUsedDate": str(first_used),
        "registrationDate": str(first_used + timedelta(days=rng.randrange(200, 2000)) if imported else first_used),
        "manufactureDate": str(first_used - timedelta(days=rng.randrange(10, 120))),
        "primaryColour": rng.choices(_COLOURS, _COLOUR_WEIGHTS)[0],
        "secondaryColour": None,
        "engineSize": rng.choice(_ENGINES[fuel]),
        "model": model,
        "make": make,
        "fuelType": fuel,
        "lastMotTestDate": tests[0]["completedDate"] if tests else None,
        "dataSource": "DVA NI" if rng.random() < 0.03 else "dvsa",
        "motTests": tests,
    }
    if record["secondaryColour"] is None and rng.random() < 0.01:
        record["secondaryColour"] = rng.choice(_COLOURS)
    return record


def _modification(index: int, role: str, base_end: int) -> tuple[str | None, bool]:
    """(change type, brand new?) of vehicle ``index`` in a file of ``role``; deterministic."""
    roll = (index * 2654435761) % 1000 / 1000
    if role == "base":
        return "CREATED", False
    if role == "bulk":
        return None, False
    if index < base_end:
        return ("DELETED" if roll < 0.02 else "UPDATED"), False
    return ("CREATED", True) if roll < 0.08 else ("UPDATED", False)


def _write_part(args: tuple) -> tuple[str, dict]:
    part_path, first, count, role, base_end, day, as_of, seed, compresslevel = args
    stats = {"vehicles": 0, "uncompressed_bytes": 0, "tests": 0, "defects": 0, "by_modification": {}}
    with gzip.open(part_path, "wb", compresslevel=compresslevel) as gz:
        buffer: list[str] = []
        for index in range(first, first + count):
            modification, brand_new = _modification(index, role, base_end)
            record = vehicle(index, seed=seed, day=day, as_of=as_of, brand_new=brand_new)
            if modification is not None:
                record["modification"] = modification
            line = json.dumps(record, separators=(",", ":")) + "\n"
            buffer.append(line)
            stats["uncompressed_bytes"] += len(line)
            stats["vehicles"] += 1
            stats["tests"] += len(record["motTests"])
            stats["defects"] += sum(len(t["defects"]) for t in record["motTests"])
            key = modification or "none"
            stats["by_modification"][key] = stats["by_modification"].get(key, 0) + 1
            if len(buffer) >= 2000:
                gz.write("".join(buffer).encode())
                buffer.clear()
        gz.write("".join(buffer).encode())
    return part_path, stats


def bytes_per_vehicle(*, seed: int = 11, day: date = DELTA_DAY, sample: int = 2000) -> float:
    """Mean JSON line length, to size a file by bytes before writing it in parallel."""
    total = sum(len(json.dumps(vehicle(i, seed=seed, day=day), separators=(",", ":"))) + 1 for i in range(sample))
    return total / sample


def write_mot_zip(
    path: str | Path,
    *,
    first: int = 0,
    count: int,
    role: str = "delta",
    base_end: int = 0,
    day: date = DELTA_DAY,
    as_of: date | None = None,
    part_records: int = 100_000,
    seed: int = 11,
    compresslevel: int = 6,
    processes: int | None = None,
) -> dict:
    """Write vehicles ``first`` .. ``first + count - 1`` as a zip of ``*.json.gz`` parts.

    ``role``: "base" (a first load: every record CREATED, as known on ``as_of``), "delta" (indexes
    below ``base_end`` are known vehicles, UPDATED or rarely DELETED; others are new: some brand new
    and CREATED, the rest UPDATED with their history) or "bulk" (no change type at all). Parts are
    written in parallel processes (each vehicle depends only on its index).
    """
    from concurrent.futures import ProcessPoolExecutor

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    work = path.parent / f".{path.stem}.parts"
    work.mkdir(exist_ok=True)
    jobs = []
    for number, start in enumerate(range(first, first + count, part_records), start=1):
        size = min(part_records, first + count - start)
        part = work / f"{path.stem}-part{number:03d}.json.gz"
        jobs.append((str(part), start, size, role, base_end, day, as_of, seed, compresslevel))
    stats: dict = {"vehicles": 0, "uncompressed_bytes": 0, "tests": 0, "defects": 0, "by_modification": {}}
    stats["part_stats"] = []
    tmp = path.with_suffix(".tmp")
    processes = processes or os.cpu_count() or 1
    pool = ProcessPoolExecutor(max_workers=processes) if processes > 1 and len(jobs) > 1 else None
    written = pool.map(_write_part, jobs) if pool else map(_write_part, jobs)
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for part_path, part_stats in written:
            zf.write(part_path, arcname=Path(part_path).name)
            Path(part_path).unlink()
            for key in ("vehicles", "uncompressed_bytes", "tests", "defects"):
                stats[key] += part_stats[key]
            for key, value in part_stats["by_modification"].items():
                stats["by_modification"][key] = stats["by_modification"].get(key, 0) + value
            stats["part_stats"].append({"name": Path(part_path).name, **part_stats})
    if pool:
        pool.shutdown()
    work.rmdir()
    tmp.replace(path)
    stats.update(parts=len(jobs), compressed_bytes=path.stat().st_size, first=first, last=first + count - 1)
    return stats
