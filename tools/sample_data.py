"""Sample landing data for the demo: several manufacturers over several days, with an accepted
history (additions, fixes, attribute changes), a rejected file, an infected file, a second file on
one day, a missing day, and a snapshot large enough to trip the mass-fix guard.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

HEADER = "VIN,ManufacturerRecallCampaignReference,DVSACampaignReference,RecallCampaignStartDate"
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
_VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


@dataclass(frozen=True)
class Upload:
    code: str
    day: date
    name: str
    data: bytes
    hour: int = 9  # upload time (London) on the day


def vins(prefix: str, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [prefix + "".join(rng.choices(_VIN_CHARS, k=17 - len(prefix) - 5)) + f"{i:05d}" for i in range(count)]


def csv_bytes(rows: list[tuple[str, str, str, str]], crlf: bool = False) -> bytes:
    newline = "\r\n" if crlf else "\n"
    return (newline.join([HEADER, *(",".join(r) for r in rows)]) + newline).encode("utf-8")


def recall_uploads(days: list[date]) -> list[Upload]:
    """Uploads for four consecutive business days."""
    d1, d2, d3, d4 = days
    acme = [(v, "ACME-2026-01", "R/2026/101", "2026-01-15") for v in vins("LH7", 6, 1)]
    acme += [(v, "ACME-2026-02", "", "2026-03-01") for v in vins("LH8", 4, 2)]
    bolt = [(v, "BOLT_VAN/77", "R/2026/202", "2026-02-10") for v in vins("WB1", 1500, 3)]
    crux = [(v, "CRUX-T-9", "R/2025/909", "2025-12-01") for v in vins("YV2", 8, 4)]
    acme_d2 = acme[1:] + [(v, "ACME-2026-03", "R/2026/103", "2026-04-01") for v in vins("LH9", 3, 5)]
    acme_d2[0] = (acme_d2[0][0], acme_d2[0][1], "R/2026/199", acme_d2[0][3])  # DVSA ref changed
    acme_d3 = [*acme_d2[2:], acme[0]]  # two fixed, the first one back again
    bad_bolt = [
        ("WB1BADROW0000001", "", "R/2026/202", "2026-02-10"),
        ("WB1BADROW0000002", "BOLT VAN 77", "R/2026/202", "10/02/2026"),
        ("WB1BADROW0000003", "B" * 51, "R/2026/202", "2026-02-30"),
    ]
    return [
        Upload("ACME", d1, "acme_recalls_day1.csv", csv_bytes(acme)),
        Upload("BOLT", d1, "BOLT-RECALLS.CSV", b"\xef\xbb\xbf" + csv_bytes(bolt, crlf=True)),
        Upload("CRUX", d1, "crux_recalls.csv", csv_bytes(crux)),
        Upload("ACME", d2, "acme_recalls_day2.csv", csv_bytes(acme_d2)),
        Upload("BOLT", d2, "bolt_recalls_day2.csv", csv_bytes(bolt[:1200] + bad_bolt)),
        Upload("CRUX", d2, "crux_recalls_day2.csv", csv_bytes(crux[:2]) + EICAR + b"\n"),
        Upload("ACME", d3, "acme_recalls_day3.csv", csv_bytes(acme_d3)),
        Upload("ACME", d3, "acme_recalls_day3_again.csv", csv_bytes(acme_d3), hour=15),
        Upload("BOLT", d3, "bolt_recalls_day3.csv", csv_bytes(bolt)),
        Upload("ACME", d4, "acme_recalls_day4.csv", csv_bytes(acme_d3)),
        Upload("BOLT", d4, "bolt_recalls_day4.csv", csv_bytes(bolt[:150])),  # would fix 90%: HELD
        Upload("CRUX", d4, "crux recalls day4.txt", csv_bytes(crux)),
    ]
