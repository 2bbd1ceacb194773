"""The clamd INSTREAM client against the real clamd (EICAR-only database)."""

from __future__ import annotations

import pytest

from include.scanning.clamd import ScannerUnavailable, scan_file, scanner_version
from tools.services.clamd import EICAR
from tools.services.net import free_port

CSV = b"VIN,ManufacturerRecallCampaignReference,DVSACampaignReference,RecallCampaignStartDate\n"


def test_clean_file(clamd_service, tmp_path):
    path = tmp_path / "clean.csv"
    path.write_bytes(CSV + b"LH7PRODCJEE012345,ABCCARS123,R/2026/123,2026-12-01\n")
    result = scan_file(path, clamd_service.host, clamd_service.port)
    assert (result.infected, result.signature, result.verdict) == (False, None, "CLEAN")
    assert result.scanner.startswith("ClamAV")
    assert result.scanner == scanner_version(clamd_service.host, clamd_service.port)


def test_empty_file_is_clean(clamd_service, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert scan_file(path, clamd_service.host, clamd_service.port).verdict == "CLEAN"


@pytest.mark.parametrize(
    "content",
    [EICAR, CSV + b"X," + EICAR + b",,2026-01-01\n"],
    ids=["eicar", "eicar-inside-a-csv"],
)
def test_infected_file(clamd_service, tmp_path, content):
    path = tmp_path / "infected.csv"
    path.write_bytes(content)
    result = scan_file(path, clamd_service.host, clamd_service.port)
    assert result.infected
    assert result.signature.startswith("Eicar")
    assert result.verdict == result.signature
    assert not result.signature.endswith("FOUND")


def test_large_file_in_several_chunks_is_scanned_whole(clamd_service, tmp_path):
    path = tmp_path / "large.csv"
    path.write_bytes(CSV + b"A,B,,2026-01-01\n" * 200_000 + EICAR)  # ~3 MB: EICAR in the last chunk
    assert scan_file(path, clamd_service.host, clamd_service.port).infected


def test_unreachable_scanner_raises(tmp_path):
    path = tmp_path / "clean.csv"
    path.write_bytes(CSV)
    with pytest.raises(ScannerUnavailable):
        scan_file(path, "127.0.0.1", free_port(), timeout=2)
    with pytest.raises(ScannerUnavailable):
        scanner_version("127.0.0.1", free_port(), timeout=2)
