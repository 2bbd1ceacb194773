"""Realistic recall CSVs and snapshot sequences at any size (vectorised: 3.5M rows in seconds).

What "realistic" means here:

* VINs are ISO 3779 shaped: a real-looking WMI, a model code from a small per-manufacturer set,
  a correct check digit (position 9), model-year and plant codes, a 6-digit serial; no I, O, Q.
* Campaigns have a manufacturer reference in the manufacturer's own style, a DVSA reference
  (``R/2024/123``; blank for about one campaign in five) and a start date shared by all rows.
  Campaign sizes follow a Zipf law (a few huge campaigns, a long tail), and each campaign covers a
  run of consecutive production (consecutive serials), so a VIN sits in ~1.3 campaigns on average.
* Invalid rows are a chosen share of rows, spread over the spec's rejection reasons in the
  proportions manufacturers tend to produce them (dates first); ``malformed`` adds rows with the
  wrong field count and quoted fields, which send the validator down its exact (csv module) path.
* Day-to-day churn: each day about 45% of the churn is fixed recalls (rows gone), 45% new rows
  (newly affected VINs) and 10% attribute changes (a DVSA reference assigned late, a start date
  corrected), so a 1% churn on 3.5M rows is ~15.7k fixed, ~15.7k new and ~3.5k changed rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEADER = b"VIN,ManufacturerRecallCampaignReference,DVSACampaignReference,RecallCampaignStartDate\n"
_VIN_CHARS = np.frombuffer(b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789", np.uint8)
_YEAR_CODES = np.frombuffer(b"ABCDEFGHJKLMNPRSTVWXY123456789", np.uint8)
_WEIGHTS = np.array([8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2], np.int64)
_TRANSLIT = np.zeros(256, np.int64)
for _chars, _values in (
    ("ABCDEFGH", range(1, 9)),
    ("JKLMN", range(1, 6)),
    ("P", [7]),
    ("R", [9]),
    ("STUVWXYZ", range(2, 10)),
    ("0123456789", range(10)),
):
    for _c, _v in zip(_chars, _values, strict=True):
        _TRANSLIT[ord(_c)] = _v

# manufacturer code -> (WMIs, reference style)
MANUFACTURERS: dict[str, tuple[tuple[str, ...], str]] = {
    "ACME": (("SAJ", "SAL", "SAD"), "{code}-{year}-{seq:03d}"),
    "BOLT": (("WF0", "WF1"), "{code}_TSB/{yy}/{seq}{letter}"),
    "CRUX": (("VF1", "VF3", "VF7"), "{yy}{letter}{seq:02d}"),
}
EPOCH = date(1970, 1, 1)


def vin_strings(ids: np.ndarray, manufacturer: str = "ACME") -> pa.Array:
    """ISO 3779 VINs with a valid check digit; the same id always gives the same VIN."""
    ids = np.asarray(ids, np.int64)
    wmis = np.frombuffer("".join(MANUFACTURERS[manufacturer][0]).encode(), np.uint8).reshape(-1, 3)
    model_rng = np.random.default_rng(sum(manufacturer.encode()))
    models = _VIN_CHARS[model_rng.integers(0, len(_VIN_CHARS), (40, 5))]
    m = np.empty((len(ids), 17), np.uint8)
    mix = (ids * 2654435761) % (1 << 32)
    m[:, 0:3] = wmis[mix % len(wmis)]
    m[:, 3:8] = models[(mix >> 8) % len(models)]
    serial, rest = ids % 1_000_000, ids // 1_000_000
    m[:, 9] = _YEAR_CODES[rest % len(_YEAR_CODES)]
    m[:, 10] = _VIN_CHARS[(rest // len(_YEAR_CODES)) % len(_VIN_CHARS)]
    for j in range(6):
        m[:, 16 - j] = ord("0") + (serial // 10**j) % 10
    m[:, 8] = ord("0")
    check = (_TRANSLIT[m] * _WEIGHTS).sum(axis=1) % 11
    m[:, 8] = np.where(check == 10, ord("X"), ord("0") + check)
    return pa.array(m.view("S17").ravel(), pa.binary()).cast(pa.string())


@dataclass
class Campaigns:
    refs: pa.Array  # manufacturer references
    dvsa: list[str | None]  # DVSA references (None: not assigned yet)
    start_days: np.ndarray  # int32 days since 1970-01-01
    weights: np.ndarray  # share of rows


def make_campaigns(count: int, manufacturer: str, rng: np.random.Generator) -> Campaigns:
    style = MANUFACTURERS[manufacturer][1]
    years = rng.choice(np.arange(2018, 2027), count, p=np.linspace(1, 3, 9) / np.linspace(1, 3, 9).sum())
    refs, dvsa, starts = [], [], []
    seq_by_year: dict[int, int] = {}
    for year in years.tolist():
        seq = seq_by_year[year] = seq_by_year.get(year, 0) + int(rng.integers(1, 4))
        letter = "ABCDEFGHJKLMNPRSTUVWXYZ"[seq % 23]
        refs.append(style.format(code=manufacturer, year=year, yy=year % 100, seq=seq, letter=letter))
        dvsa.append(f"R/{year}/{int(rng.integers(1, 400)):03d}" if rng.random() < 0.8 else None)
        starts.append((date(int(year), 1, 1) - EPOCH).days + int(rng.integers(0, 365)))
    weights = 1.0 / np.arange(1, count + 1) ** 0.9
    rng.shuffle(weights)
    return Campaigns(pa.array(refs, pa.string()), dvsa, np.array(starts, np.int32), weights / weights.sum())


class RecallState:
    """One manufacturer's outstanding recalls; ``advance`` moves it on by one business day."""

    def __init__(self, rows: int, *, manufacturer: str = "ACME", seed: int = 1) -> None:
        self.manufacturer = manufacturer
        self.rng = rng = np.random.default_rng(seed)
        self.campaigns = make_campaigns(int(np.clip(rows // 5000, 20, 1500)), manufacturer, rng)
        sizes = rng.multinomial(rows, self.campaigns.weights)
        vin_space = max(int(rows / 1.3), int(sizes.max())) + 1
        starts = rng.integers(0, vin_space - sizes + 1)
        offsets = np.repeat(np.cumsum(sizes) - sizes, sizes)
        vin_id = np.repeat(starts, sizes) + (np.arange(rows) - offsets)
        campaign = np.repeat(np.arange(len(sizes)), sizes)
        order = rng.permutation(rows)
        self.vin_id = vin_id[order].astype(np.int64)
        self.campaign = campaign[order].astype(np.int32)
        self.dvsa_values: list[str | None] = list(dict.fromkeys(d for d in self.campaigns.dvsa if d))
        index = {d: i for i, d in enumerate(self.dvsa_values)}
        campaign_dvsa = np.array([index[d] if d else -1 for d in self.campaigns.dvsa], np.int32)
        self.dvsa_idx = campaign_dvsa[self.campaign]
        self.start_days = self.campaigns.start_days[self.campaign].copy()
        self.next_vin = vin_space

    def __len__(self) -> int:
        return len(self.vin_id)

    def advance(self, churn: float) -> dict[str, int]:
        """One day on: ~45% of ``churn`` fixed, ~45% newly affected VINs, ~10% changed rows."""
        rng = self.rng
        total = round(len(self) * churn)
        fixed, added = round(total * 0.45), round(total * 0.45)
        changed = total - fixed - added
        keep = np.ones(len(self), bool)
        keep[rng.choice(len(self), fixed, replace=False)] = False
        for name in ("vin_id", "campaign", "dvsa_idx", "start_days"):
            setattr(self, name, getattr(self, name)[keep])
        rows = rng.choice(len(self), changed, replace=False)
        unassigned = rows[self.dvsa_idx[rows] < 0]
        late = f"R/2026/{700 + int(rng.integers(0, 99))}"
        self.dvsa_values.append(late)
        self.dvsa_idx[unassigned] = len(self.dvsa_values) - 1  # DVSA reference assigned late
        corrected = rows[self.dvsa_idx[rows] >= 0]
        self.start_days[np.setdiff1d(corrected, unassigned)] += 1  # start date corrected
        new_campaign = rng.choice(len(self.campaigns.weights), added, p=self.campaigns.weights).astype(np.int32)
        dvsa_of = self._campaign_dvsa()
        self.vin_id = np.concatenate([self.vin_id, self.next_vin + np.arange(added, dtype=np.int64)])
        self.campaign = np.concatenate([self.campaign, new_campaign])
        self.dvsa_idx = np.concatenate([self.dvsa_idx, dvsa_of[new_campaign]])
        self.start_days = np.concatenate([self.start_days, self.campaigns.start_days[new_campaign]])
        self.next_vin += added
        return {"fixed": fixed, "added": added, "changed": changed}

    def _campaign_dvsa(self) -> np.ndarray:
        index = {d: i for i, d in enumerate(self.dvsa_values)}
        return np.array([index[d] if d else -1 for d in self.campaigns.dvsa], np.int32)

    def columns(self) -> dict[str, pa.Array]:
        """The four columns as strings, exactly as a manufacturer's CSV carries them."""
        dvsa = pa.array(self.dvsa_values, pa.string()).take(pa.array(self.dvsa_idx, mask=self.dvsa_idx < 0))
        return {
            "VIN": vin_strings(self.vin_id, self.manufacturer),
            "ManufacturerRecallCampaignReference": self.campaigns.refs.take(pa.array(self.campaign)),
            "DVSACampaignReference": pc.fill_null(dvsa, ""),
            "RecallCampaignStartDate": pa.array(self.start_days, pa.date32()).cast(pa.string()),
        }

    def snapshot(self) -> pa.Table:
        """The staged snapshot (the intake's SNAPSHOT_SCHEMA), as the apply reads it."""
        cols = self.columns()
        dvsa = cols["DVSACampaignReference"]
        return pa.table(
            {
                "vin": cols["VIN"],
                "manufacturer_campaign_reference": cols["ManufacturerRecallCampaignReference"],
                "dvsa_campaign_reference": pc.if_else(pc.equal(dvsa, ""), pa.scalar(None, pa.string()), dvsa),
                "recall_campaign_start_date": pa.array(self.start_days, pa.date32()),
            }
        )


# Invalid-row kinds and their share of the invalid rows (dates dominate real rejections).
INVALID_KINDS: dict[str, float] = {
    "date_format": 0.25,
    "reference_characters": 0.14,
    "missing_vin": 0.10,
    "dvsa_characters": 0.10,
    "conflicting_duplicate": 0.10,
    "missing_reference": 0.08,
    "missing_start_date": 0.08,
    "reference_too_long": 0.08,
    "impossible_date": 0.07,
}
MALFORMED_KINDS: dict[str, float] = {"extra_field": 0.4, "missing_field": 0.3, "quoted_field": 0.3}


def _bad_values(kind: str, rows: np.ndarray, cols: dict[str, pa.Array], rng: np.random.Generator) -> dict:
    """Replacement values {column: list} for ``rows`` (sorted) to make them invalid as ``kind``."""
    ref = cols["ManufacturerRecallCampaignReference"].take(pa.array(rows)).to_pylist()
    dvsa = cols["DVSACampaignReference"].take(pa.array(rows)).to_pylist()
    day = cols["RecallCampaignStartDate"].take(pa.array(rows)).to_pylist()
    n = len(rows)
    if kind == "date_format":
        shapes = ["{d}/{m}/{y}", "{y}/{m}/{d}", "{d}-{m}-{y}", "{y}{m}{d}", "{d}.{m}.{y}"]
        out = []
        for i, value in enumerate(day):
            y, m, d = value.split("-")
            out.append(shapes[i % len(shapes)].format(y=y, m=m, d=d))
        return {"RecallCampaignStartDate": out}
    if kind == "impossible_date":
        return {
            "RecallCampaignStartDate": [
                ["2023-02-29", "2024-06-31", "2024-13-01", "2025-00-10"][i % 4] for i in range(n)
            ]
        }
    if kind == "missing_vin":
        return {"VIN": [""] * n}
    if kind == "missing_reference":
        return {"ManufacturerRecallCampaignReference": [""] * n}
    if kind == "missing_start_date":
        return {"RecallCampaignStartDate": [""] * n}
    if kind == "reference_too_long":
        return {"ManufacturerRecallCampaignReference": [(r + "-SUPPLEMENTARY-INSPECTION-") * 3 for r in ref]}
    if kind == "reference_characters":
        return {
            "ManufacturerRecallCampaignReference": [r.replace("-", " ", 1) + "#" * (i % 2) for i, r in enumerate(ref)]
        }
    if kind == "dvsa_characters":
        return {"DVSACampaignReference": [(d or "R/2024/001").replace("/", " ") for d in dvsa]}
    if kind == "conflicting_duplicate":  # another row's VIN and reference, with a different date
        others = rng.integers(0, len(cols["VIN"]), n)
        other_day = cols["RecallCampaignStartDate"].take(pa.array(others)).to_pylist()
        shifted = [str(date.fromisoformat(d) + timedelta(days=1)) for d in other_day]
        return {
            "VIN": cols["VIN"].take(pa.array(others)).to_pylist(),
            "ManufacturerRecallCampaignReference": cols["ManufacturerRecallCampaignReference"]
            .take(pa.array(others))
            .to_pylist(),
            "RecallCampaignStartDate": shifted,
        }
    if kind == "extra_field":
        return {"DVSACampaignReference": [f"{d},SEE NOTE" for d in dvsa]}
    if kind == "missing_field":  # the DVSA field and its comma dropped: 3 fields
        return {"DVSACampaignReference": [None] * n}
    if kind == "quoted_field":
        return {"ManufacturerRecallCampaignReference": [f'"{r}"' for r in ref]}
    raise ValueError(kind)


def inject_invalid(
    cols: dict[str, pa.Array], share: float, rng: np.random.Generator, *, malformed_share: float = 0.0
) -> tuple[dict[str, pa.Array], dict[str, int]]:
    """Make ``share`` of the rows invalid; ``malformed_share`` of those get a wrong field count."""
    n = len(cols["VIN"])
    total = round(n * share)
    if not total:
        return cols, {}
    rows = rng.choice(n, total, replace=False)
    n_malformed = round(total * malformed_share)
    kinds = list(INVALID_KINDS) + list(MALFORMED_KINDS)
    p = np.array(list(INVALID_KINDS.values()) + [0.0] * len(MALFORMED_KINDS))
    assigned = rng.choice(len(kinds), total - n_malformed, p=p / p.sum())
    if n_malformed:
        mp = np.array(list(MALFORMED_KINDS.values()))
        assigned = np.concatenate([assigned, len(INVALID_KINDS) + rng.choice(len(mp), n_malformed, p=mp / mp.sum())])
    counts: dict[str, int] = {}
    new_cols = dict(cols)
    for k, kind in enumerate(kinds):
        selected = np.sort(rows[assigned == k])
        if not len(selected):
            continue
        counts[kind] = len(selected)
        mask = np.zeros(n, bool)
        mask[selected] = True
        for column, values in _bad_values(kind, selected, cols, rng).items():
            replacement = pa.array(values, pa.string())
            new_cols[column] = pc.replace_with_mask(new_cols[column], pa.array(mask), replacement)
    return new_cols, counts


def csv_bytes(cols: dict[str, pa.Array], *, crlf: bool = False) -> bytes:
    """Header plus one line per row; a null DVSA value means the field (and its comma) is absent."""
    eol = "\r\n" if crlf else "\n"
    dvsa = cols["DVSACampaignReference"]
    head = pc.binary_join_element_wise(cols["VIN"], cols["ManufacturerRecallCampaignReference"], ",")
    middle = pc.if_else(pc.is_null(dvsa), head, pc.binary_join_element_wise(head, pc.fill_null(dvsa, ""), ","))
    last = pc.binary_join_element_wise(cols["RecallCampaignStartDate"], pa.scalar(eol), "")
    lines = pc.binary_join_element_wise(middle, last, ",")
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    offsets = np.frombuffer(lines.buffers()[1], np.int32)[lines.offset : lines.offset + len(lines) + 1]
    body = lines.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]
    return HEADER.replace(b"\n", eol.encode()) + body


def write_recall_csv(
    path: str | Path,
    rows: int,
    *,
    invalid_share: float = 0.0,
    malformed_share: float = 0.0,
    manufacturer: str = "ACME",
    seed: int = 1,
) -> dict:
    """Write one day's CSV; returns what was written (rows, bytes, invalid rows by kind)."""
    state = RecallState(rows, manufacturer=manufacturer, seed=seed)
    cols, counts = inject_invalid(
        state.columns(), invalid_share, np.random.default_rng(seed + 1), malformed_share=malformed_share
    )
    data = csv_bytes(cols)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"rows": rows, "bytes": len(data), "invalid": counts}


def write_snapshot_sequence(
    directory: str | Path, rows: int, days: int, *, churn: float = 0.01, manufacturer: str = "ACME", seed: int = 1
) -> list[dict]:
    """Staged snapshots (Parquet, as the intake writes them) for day 0..``days``."""
    import pyarrow.parquet as pq

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = RecallState(rows, manufacturer=manufacturer, seed=seed)
    written = []
    for day in range(days + 1):
        change = state.advance(churn) if day else {"fixed": 0, "added": len(state), "changed": 0}
        path = directory / f"day{day:02d}.parquet"
        pq.write_table(state.snapshot(), path, compression="zstd")
        written.append({"day": day, "path": str(path), "rows": len(state), "bytes": path.stat().st_size, **change})
    return written
