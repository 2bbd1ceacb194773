"""Container handling: names, limits, and exact locations of structural errors."""

from __future__ import annotations

import gzip
import json
import random
import sys
import zipfile
from datetime import date
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from include.mot import files
from include.mot.files import DeltaRejected, Limits
from tools import mot_samples as samples

D = date(2024, 3, 1)


def segments(path: Path, tmp_path: Path, **limits):
    return list(files.iter_segments(path, tmp_path / "work", Limits(**limits)))


def test_names_round_trip():
    assert files.delta_file_name(D) == "delta-light-vehicle_01-03-2024.zip"
    assert files.bulk_file_name(D) == "bulk-light-vehicle_01-03-2024.zip"
    assert files.business_date_from_name("delta-light-vehicle_01-03-2024.zip") == D
    assert files.business_date_from_name("delta-light-vehicle_01-03-2024.json.gz") == D
    assert files.parse_file_name("bulk-light-vehicle_31-12-2023.zip") == ("bulk", date(2023, 12, 31))
    with pytest.raises(ValueError):
        files.business_date_from_name("delta-light-vehicle_2024-03-01.zip")


def test_find_delta_file_accepts_the_three_containers(tmp_path):
    assert files.find_delta_file(tmp_path, D) is None
    samples.write_jsonl(tmp_path / "delta-light-vehicle_01-03-2024.jsonl", [samples.vehicle_record("A1")])
    assert files.find_delta_file(tmp_path, D).name.endswith(".jsonl")
    samples.write_delta_zip(tmp_path / files.delta_file_name(D), [samples.vehicle_record("A1")])
    assert files.find_delta_file(tmp_path, D).name.endswith(".zip")


def test_sha256_is_content_identity(tmp_path):
    a = samples.write_jsonl(tmp_path / "a.jsonl", [samples.vehicle_record("A1")])
    b = samples.write_jsonl(tmp_path / "b.jsonl", [samples.vehicle_record("A1")])
    assert files.sha256_file(a) == files.sha256_file(b)
    assert len(files.sha256_file(a)) == 64


def test_zip_parts_are_split_in_order_with_line_numbers(tmp_path):
    records = [samples.vehicle_record(f"R{i}") for i in range(10)]
    path = samples.write_delta_zip(tmp_path / "d.zip", records, parts=3)
    segs = segments(path, tmp_path)
    assert [s.part_index for s in segs] == [0, 1, 2]
    assert sum(s.line_count for s in segs) == 10
    assert all(s.first_line == 1 for s in segs)


def test_blank_lines_map_records_to_their_real_lines(tmp_path):
    path = samples.write_jsonl(
        tmp_path / "d.jsonl", [samples.vehicle_record("A"), "", "   ", samples.vehicle_record("B")]
    )
    (seg,) = segments(path, tmp_path)
    assert seg.record_lines().tolist() == [1, 4]
    assert '"B"' in seg.read_line(4)


def test_small_segments_keep_global_line_numbers(tmp_path):
    records = [samples.vehicle_record(f"R{i}") for i in range(50)]
    path = samples.write_json_gz(tmp_path / "d.json.gz", records)
    segs = segments(path, tmp_path, segment_bytes=2000)
    assert len(segs) > 3
    assert segs[1].first_line == segs[0].first_line + segs[0].line_count
    assert sum(s.line_count for s in segs) == 50


def test_segments_rebuild_the_part_exactly_whatever_the_chunking(tmp_path, monkeypatch):
    """Decompressed chunks end mid-line and segments are cut mid-chunk: every byte lands in exactly
    one segment, in order, and each line's number, offset and blank flag point back at it."""
    rng = random.Random(7)
    lines = []
    for i in range(300):
        roll = rng.random()
        if roll < 0.05:
            lines.append(b"")
        elif roll < 0.08:
            lines.append(b" \t ")
        else:
            lines.append(json.dumps({"registration": f"R{i}", "pad": "x" * rng.randrange(0, 900)}).encode())
    body = b"\n".join(lines) + b"\n"
    path = tmp_path / "d.json.gz"
    path.write_bytes(gzip.compress(body))
    for step, segment_bytes in ((97, 1500), (4096, 700), (1 << 16, 5000)):
        monkeypatch.setattr(files, "_MAX_OUT_STEP", step)
        segs = segments(path, tmp_path / str(step), segment_bytes=segment_bytes)
        assert len(segs) > 5
        assert b"".join(s.path.read_bytes() for s in segs) == body
        number = 1
        for seg in segs:
            assert seg.first_line == number
            assert seg.bytes == seg.path.stat().st_size
            for line in range(seg.first_line, seg.first_line + seg.line_count):
                assert seg.read_line(line).encode() == lines[line - 1]
            blank = [n for n in range(seg.first_line, seg.first_line + seg.line_count) if not lines[n - 1].strip()]
            assert seg.blank_lines.tolist() == blank
            number += seg.line_count
        assert number == len(lines) + 1


@pytest.mark.reliability(
    "Hostile input",
    "MOT delivery that is not a zip",
    "rejected with a clear reason",
)
def test_not_a_zip_is_rejected(tmp_path):
    path = tmp_path / "delta-light-vehicle_01-03-2024.zip"
    path.write_bytes(b"this is not a zip")
    with pytest.raises(DeltaRejected, match="zip"):
        segments(path, tmp_path)


def test_zip_without_json_parts_is_rejected(tmp_path):
    path = tmp_path / "d.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(DeltaRejected, match="no JSON-lines parts"):
        segments(path, tmp_path)


def test_bad_gzip_member_names_the_part(tmp_path):
    path = tmp_path / "d.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("part-001.json.gz", gzip.compress(b'{"registration":"A"}\n'))
        zf.writestr("part-002.json.gz", b"not gzip at all")
    with pytest.raises(DeltaRejected) as err:
        segments(path, tmp_path)
    assert err.value.part == "part-002.json.gz"
    assert "gzip" in str(err.value)


@pytest.mark.reliability(
    "Hostile input",
    "truncated or corrupt gzip part",
    "rejected (truncated/corrupt), not a crash",
)
def test_truncated_gzip_is_rejected(tmp_path):
    data = gzip.compress(b"".join(b'{"registration":"R%d"}\n' % i for i in range(2000)))
    path = tmp_path / "d.json.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DeltaRejected, match=r"truncated|corrupt"):
        segments(path, tmp_path)


@pytest.mark.reliability(
    "Hostile input",
    "gzip decompression bomb (compression ratio far above normal)",
    "rejected naming the part, before it is expanded",
)
def test_decompression_bomb_by_ratio(tmp_path):
    path = tmp_path / "d.json.gz"
    path.write_bytes(gzip.compress(b" " * (20 * 2**20)))
    with pytest.raises(DeltaRejected, match="ratio") as err:
        segments(path, tmp_path, max_ratio=100, ratio_grace_bytes=2**20)
    assert err.value.part == "d.json.gz"


@pytest.mark.reliability(
    "Hostile input",
    "MOT file whose decompressed size exceeds the configured maximum",
    "rejected, nothing staged",
)
def test_decompression_bomb_by_size(tmp_path):
    path = samples.write_json_gz(tmp_path / "d.json.gz", [samples.vehicle_record(f"R{i}") for i in range(200)])
    with pytest.raises(DeltaRejected, match="decompressed size"):
        segments(path, tmp_path, max_decompressed_bytes=10_000)


@pytest.mark.reliability(
    "Hostile input",
    "MOT JSON line longer than the configured maximum line length",
    "rejected with its line number",
)
def test_over_long_line_reports_its_line(tmp_path):
    long_record = samples.vehicle_record("LONG", model="X" * 5000)
    path = samples.write_jsonl(tmp_path / "d.jsonl", [samples.vehicle_record("A"), long_record])
    with pytest.raises(DeltaRejected, match="longer than") as err:
        segments(path, tmp_path, max_line_bytes=2000)
    assert err.value.line == 2


@pytest.mark.reliability(
    "Hostile input",
    "huge unterminated MOT JSON line",
    "rejected without buffering the whole line in memory",
)
def test_over_long_unterminated_line_is_rejected_without_buffering_it_all(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"registration":"A"}\n{"x":"' + b"y" * 100_000)
    with pytest.raises(DeltaRejected, match="longer than") as err:
        segments(path, tmp_path, max_line_bytes=1000)
    assert err.value.line == 2
