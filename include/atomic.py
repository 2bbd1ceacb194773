"""Files appear whole or not at all, even with two writers of the same target at once."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def private_temp(path: Path) -> Path:
    """A temp name next to ``path`` that no other writer can pick, to fill and then rename over it.

    Two runs of a day (a backfill overlapping the scheduled run) may write the same target at
    once; with a shared temp name one could truncate the other's half-written file just before
    its rename. Same folder, so the rename is atomic.
    """
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
