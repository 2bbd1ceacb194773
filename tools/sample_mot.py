"""Sample MOT deltas for the demo: one vehicle is created, gets a new test, changes colour, is
deleted and created again, among a few dozen ordinary vehicles; one record is broken (quarantined).
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

from include.mot.files import delta_file_name
from tools.mot_samples import mot_test, synthetic_records, vehicle_record, write_delta_zip

FEATURED_REGISTRATION = "DV26MOT"


def _featured(modification: str, colour: str, tests: int) -> dict:
    history = [
        mot_test(9_100_000_000 + i, completed=f"202{i}-05-0{i + 1} 10:00:00", odometer=str(10_000 * (i + 1)))
        for i in range(tests)
    ]
    return vehicle_record(
        FEATURED_REGISTRATION, modification, history, make="FORD", model="FOCUS", primary_colour=colour
    )


def mot_uploads(days: list[date]) -> list[tuple[str, bytes, date]]:
    d1, d2, d3, d4 = days
    fleet = synthetic_records(150, seed=11)
    updated = [dict(r, modification="UPDATED") for r in fleet[:120]]
    broken = vehicle_record("", "UPDATED")  # no registration: quarantined, the rest applied
    batches = {
        d1: [_featured("CREATED", "Blue", 1), *fleet],
        d2: [_featured("UPDATED", "Red", 2), *updated, broken],  # colour change and a new test
        d3: [_featured("DELETED", "Red", 2), *updated[:20]],
        d4: [_featured("CREATED", "Silver", 2)],  # created again after deletion
    }
    uploads = []
    with tempfile.TemporaryDirectory() as folder:
        for day, records in batches.items():
            path = write_delta_zip(Path(folder) / delta_file_name(day), records, parts=2)
            uploads.append((path.name, path.read_bytes(), day))
    return uploads
