"""VIN and registration lookups: the only page reads that need the big warehouse tables.

They run on a short read-only connection from :mod:`include.ops.readers` and return plain data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import duckdb

MAX_KEY_LENGTH = 64


def normalise_vin(vin: str) -> str:
    return vin.strip()[:MAX_KEY_LENGTH]


def normalise_registration(registration: str) -> str:
    return re.sub(r"\s+", "", registration).upper()[:MAX_KEY_LENGTH]


@dataclass(frozen=True)
class Recall:
    manufacturer: str
    vin: str
    manufacturer_campaign_reference: str
    dvsa_campaign_reference: str | None
    recall_campaign_start_date: date
    status: str
    first_seen_on: date
    fixed_on: date | None
    last_changed_on: date


@dataclass(frozen=True)
class Interval:
    manufacturer: str
    manufacturer_campaign_reference: str
    dvsa_campaign_reference: str | None
    recall_campaign_start_date: date
    valid_from: date
    valid_to: date | None
    opened_by: str
    closed_by: str | None


@dataclass
class VinHistory:
    vin: str
    recalls: list[Recall] = field(default_factory=list)
    history: list[Interval] = field(default_factory=list)

    @property
    def outstanding(self) -> list[Recall]:
        return [r for r in self.recalls if r.status == "OUTSTANDING"]

    @property
    def past(self) -> list[Recall]:
        return [r for r in self.recalls if r.status != "OUTSTANDING"]

    def intervals_of(self, recall: Recall) -> list[Interval]:
        return [
            i
            for i in self.history
            if i.manufacturer == recall.manufacturer
            and i.manufacturer_campaign_reference == recall.manufacturer_campaign_reference
        ]

    def api_payload(self, names: dict[str, str] | None = None) -> dict[str, Any]:
        """The recalls API's GET response: ``{vin, manufacturer, recalls: [...]}``, outstanding only.

        ``manufacturer`` is the manufacturer's code (``manufacturerName`` its name when known); a VIN
        is one manufacturer's, so when files of several manufacturers list it (a data error) the
        first code is given and every recall also carries its own ``manufacturer``.
        """
        outstanding = sorted(
            self.outstanding,
            key=lambda r: (r.manufacturer, r.recall_campaign_start_date, r.manufacturer_campaign_reference),
        )
        codes = sorted({r.manufacturer for r in outstanding})
        manufacturer = codes[0] if codes else None
        return {
            "vin": self.vin,
            "manufacturer": manufacturer,
            "manufacturerName": (names or {}).get(manufacturer) if manufacturer else None,
            "recalls": [
                {
                    "manufacturer": r.manufacturer,
                    "manufacturerRecallCampaignReference": r.manufacturer_campaign_reference,
                    "dvsaCampaignReference": r.dvsa_campaign_reference or None,
                    "recallCampaignStartDate": r.recall_campaign_start_date.isoformat(),
                }
                for r in outstanding
            ],
        }


def vin_history(con: duckdb.DuckDBPyConnection, vin: str) -> VinHistory:
    """Every recall (outstanding and fixed) of a VIN, with its status intervals."""
    recalls = con.execute(
        "SELECT manufacturer, vin, manufacturer_campaign_reference, dvsa_campaign_reference,"
        " recall_campaign_start_date, status, first_seen_on, fixed_on, last_changed_on"
        " FROM recalls WHERE vin = $vin ORDER BY status DESC, manufacturer, first_seen_on,"
        " manufacturer_campaign_reference",
        {"vin": vin},
    ).fetchall()
    history = con.execute(
        "SELECT manufacturer, manufacturer_campaign_reference, dvsa_campaign_reference, recall_campaign_start_date,"
        " valid_from, valid_to, opened_by, closed_by"
        " FROM recall_history WHERE vin = $vin ORDER BY manufacturer, manufacturer_campaign_reference, valid_from",
        {"vin": vin},
    ).fetchall()
    return VinHistory(vin, [Recall(*row) for row in recalls], [Interval(*row) for row in history])


@dataclass
class RegistrationHistory:
    registration: str
    versions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    tests: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.versions or self.events or self.quarantined)


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def registration_history(con: duckdb.DuckDBPyConnection, registration: str) -> RegistrationHistory:
    """A vehicle's versions (SCD 2), the deliveries that touched it, its tests and quarantined records."""
    params = {"reg": registration}
    found = RegistrationHistory(registration)
    found.versions = _dicts(
        con.execute(
            "SELECT valid_from, valid_to, is_current, is_deleted, modification, make, model, primary_colour,"
            " secondary_colour, fuel_type, engine_size, first_used_date, registration_date, manufacture_date,"
            " last_mot_test_date, data_source FROM vehicles WHERE registration = $reg ORDER BY valid_from",
            params,
        )
    )
    found.events = _dicts(
        con.execute(
            "SELECT business_date, CASE source_rank WHEN 0 THEN 'bulk' ELSE 'delta' END AS source, modification,"
            " sha256 FROM mot_vehicle_events WHERE registration = $reg ORDER BY business_date, source_rank",
            params,
        )
    )
    found.tests = _dicts(
        con.execute(
            "SELECT t.mot_test_number, t.completed_date, t.test_result, t.expiry_date, t.odometer_value,"
            " t.odometer_unit, t.record_date,"
            " (SELECT count(*) FROM mot_defects d WHERE d.mot_test_number = t.mot_test_number) AS defects"
            " FROM mot_tests t WHERE t.registration = $reg ORDER BY t.completed_date DESC LIMIT 100",
            params,
        )
    )
    found.quarantined = _dicts(
        con.execute(
            "SELECT business_date, file_name, part, line, reason FROM mot_quarantine WHERE registration = $reg"
            " ORDER BY business_date DESC, part, line LIMIT 100",
            params,
        )
    )
    return found


def as_text(value: Any) -> str:
    """A value for display: dates as ISO, None as an empty string."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
