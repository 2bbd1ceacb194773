"""MOT history files: names, containers, checksums and safe decompression.

DVSA ships ``delta-light-vehicle_DD-MM-YYYY.zip`` (and the weekly ``bulk-light-vehicle_...``)
as a zip of gzip JSON-lines parts. Everything here is about getting from that container to
plain JSON-lines *segments* on local disk that DuckDB can scan fast, while refusing inputs that
could exhaust the machine (decompression bombs, endless lines) and reporting
the exact part and line of anything structurally broken. Nothing here parses records: the scan
is a vectorised byte pass (numpy), so it costs a small fraction of the JSON parse itself.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
from isal import isal_zlib

DELTA_PREFIX = "delta-light-vehicle"
BULK_PREFIX = "bulk-light-vehicle"
_NAME = re.compile(r"^(delta|bulk)-light-vehicle_(\d{2})-(\d{2})-(\d{4})(\.zip|\.json\.gz|\.jsonl)$")
_PART_SUFFIXES = (".json.gz", ".jsonl.gz", ".jsonl", ".json")
_READ_BYTES = 4 * 2**20  # compressed bytes read per step
_MAX_OUT_STEP = 16 * 2**20  # decompressed bytes produced per step (bounds memory on bombs)
UTF8_BOM = b"\xef\xbb\xbf"


class DeltaRejected(Exception):
    """The file is structurally unusable: nothing in it may be applied.

    ``part`` and ``line`` (1-based, within the decompressed part) locate the problem so the
    rejection notice can tell DVSA exactly where their export broke.
    """

    def __init__(self, reason: str, *, part: str | None = None, line: int | None = None) -> None:
        self.reason = reason
        self.part = part
        self.line = line
        where = ""
        if part is not None:
            where = f" (part {part}" + (f", line {line}" if line is not None else "") + ")"
        super().__init__(f"{reason}{where}")


@dataclass(frozen=True)
class Limits:
    """Resource limits; every one is a parameter because DVSA's sizes drift over the years.

    The defaults leave head-room over real files (records of a few KB, ~10x gzip ratio) while
    stopping hostile or corrupt input long before memory or disk runs out. There is no nesting
    limit: DuckDB's JSON parser is iterative, so a deep value costs no more than its bytes, which
    ``max_line_bytes`` bounds, and a deep unknown field must not break ingestion.
    """

    max_file_bytes: int = 8 * 2**30  # the delivered (compressed) delta file
    max_decompressed_bytes: int = 64 * 2**30
    max_ratio: float = 200.0
    max_line_bytes: int = 8 * 2**20
    segment_bytes: int = 128 * 2**20
    ratio_grace_bytes: int = 4 * 2**20  # tiny inputs compress absurdly well; don't flag them


# ----------------------------------------------------------------------------------- names


def delta_file_name(business_date: date) -> str:
    """The zip DVSA publishes for ``business_date``."""
    return f"{DELTA_PREFIX}_{business_date:%d-%m-%Y}.zip"


def bulk_file_name(business_date: date) -> str:
    """The weekly bulk zip for ``business_date``."""
    return f"{BULK_PREFIX}_{business_date:%d-%m-%Y}.zip"


def delta_candidate_names(business_date: date) -> list[str]:
    """Every accepted name for one day's delta, preferred (zip) first."""
    stem = f"{DELTA_PREFIX}_{business_date:%d-%m-%Y}"
    return [f"{stem}.zip", f"{stem}.json.gz", f"{stem}.jsonl"]


def parse_file_name(name: str) -> tuple[str, date]:
    """``("delta"|"bulk", business_date)`` from a file name; ValueError if it is not ours."""
    match = _NAME.match(Path(name).name)
    if not match:
        raise ValueError(f"not an MOT delta/bulk file name: {name!r}")
    kind, dd, mm, yyyy, _ = match.groups()
    return kind, datetime.strptime(f"{dd}-{mm}-{yyyy}", "%d-%m-%Y").date()


def business_date_from_name(name: str) -> date:
    """The business date encoded in a delta or bulk file name."""
    return parse_file_name(name)[1]


def find_delta_file(directory: str | Path, business_date: date) -> Path | None:
    """The delta for ``business_date`` in ``directory`` (zip preferred), or None if absent."""
    for name in delta_candidate_names(business_date):
        candidate = Path(directory) / name
        if candidate.is_file():
            return candidate
    return None


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, streamed: the identity of a delivery in the audit table."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 * 2**20):
            digest.update(chunk)
    return digest.hexdigest()


# ----------------------------------------------------------------------------------- parts


@dataclass(frozen=True)
class PartRef:
    """One JSON-lines part inside a delivery: its name and how many bytes it occupies on disk."""

    name: str
    compressed_size: int
    gzipped: bool


def _container(path: Path) -> str:
    with open(path, "rb") as handle:
        magic = handle.read(4)
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(".gz"):
        return "gzip"
    if magic.startswith(b"PK\x03\x04"):
        return "zip"
    if magic.startswith(b"\x1f\x8b"):
        return "gzip"
    return "plain"


def list_parts(path: str | Path) -> list[PartRef]:
    """The parts of a delivery in processing order (sorted by name inside a zip).

    Bulk staging calls this first and then stages each part separately, possibly in parallel.
    """
    path = Path(path)
    kind = _container(path)
    if kind != "zip":
        return [PartRef(path.name, path.stat().st_size, kind == "gzip")]
    try:
        with zipfile.ZipFile(path) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise DeltaRejected(f"not a readable zip archive: {exc}") from exc
    parts = [
        PartRef(i.filename, i.compress_size, i.filename.lower().endswith(".gz"))
        for i in sorted(infos, key=lambda i: i.filename)
        if i.filename.lower().endswith(_PART_SUFFIXES)
    ]
    if not parts:
        raise DeltaRejected(f"zip archive holds no JSON-lines parts (members: {[i.filename for i in infos][:10]})")
    return parts


def _open_raw(path: Path, part: PartRef) -> tuple[BinaryIO, zipfile.ZipFile | None]:
    if _container(path) != "zip":
        return open(path, "rb"), None
    archive = zipfile.ZipFile(path)
    info = archive.getinfo(part.name)
    if info.flag_bits & 0x1:
        archive.close()
        raise DeltaRejected("encrypted zip member", part=part.name)
    return archive.open(info), archive


def _decompressed_chunks(path: Path, part: PartRef, limits: Limits) -> Iterator[bytes]:
    """Decompressed bytes of one part, checking size and ratio as they are produced.

    ``max_length`` keeps every step bounded, so a bomb is detected after at most
    ``_MAX_OUT_STEP`` bytes of overshoot instead of after exhausting memory. Inflating is ISA-L's
    (``isal_zlib``, zlib's API and output at about twice the speed): it is the largest single
    cost of reading a delivery in Python.
    """
    produced = 0
    budget_ratio = max(limits.ratio_grace_bytes, int(limits.max_ratio * max(part.compressed_size, 1)))

    def check(n: int) -> None:
        nonlocal produced
        produced += n
        if produced > limits.max_decompressed_bytes:
            raise DeltaRejected(
                f"decompressed size exceeds limit of {limits.max_decompressed_bytes} bytes (decompression bomb?)",
                part=part.name,
            )
        if produced > budget_ratio:
            raise DeltaRejected(
                f"compression ratio exceeds {limits.max_ratio:g}:1 ({part.compressed_size} bytes compressed)"
                " (decompression bomb?)",
                part=part.name,
            )

    try:
        raw, archive = _open_raw(path, part)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise DeltaRejected(f"cannot open part: {exc}", part=part.name) from exc
    try:
        if not part.gzipped:
            while True:
                data = raw.read(_READ_BYTES)
                if not data:
                    return
                check(len(data))
                yield data
        inflater = isal_zlib.decompressobj(wbits=31)
        fed = False  # has the current inflater consumed bytes of a member it has not finished?
        any_input = False
        while True:
            data = raw.read(_READ_BYTES)
            if not data:
                break
            while data:
                fed = True
                out = inflater.decompress(data, _MAX_OUT_STEP)
                if out:
                    check(len(out))
                    yield out
                data = inflater.unconsumed_tail
                if inflater.eof:
                    # concatenated gzip members are legal gzip: go on with a fresh inflater
                    data = inflater.unused_data + data
                    inflater = isal_zlib.decompressobj(wbits=31)
                    fed = False
            any_input = True
        if fed and not inflater.eof:
            tail = inflater.flush()
            if tail:
                check(len(tail))
                yield tail
            if not inflater.eof:
                raise DeltaRejected("truncated gzip stream", part=part.name)
        if not any_input:
            raise DeltaRejected("empty gzip stream", part=part.name)
    except (zlib.error, isal_zlib.error, gzip.BadGzipFile, EOFError) as exc:
        raise DeltaRejected(f"corrupt gzip data: {exc}", part=part.name) from exc
    except zipfile.BadZipFile as exc:
        raise DeltaRejected(f"corrupt zip member: {exc}", part=part.name) from exc
    finally:
        raw.close()
        if archive is not None:
            archive.close()


# ----------------------------------------------------------------------------------- segments


@dataclass
class Segment:
    """A run of complete lines of one part, decompressed to a plain JSON-lines file.

    Segments bound memory (a 1 GB part becomes several DuckDB scans) and let decompression of
    the next segment overlap parsing of this one. ``first_line`` is the part's 1-based line
    number of the segment's first line; ``blank_lines`` lists part line numbers that hold no
    record (DuckDB skips them, so record ordinals must be mapped back to lines).
    """

    part: str
    part_index: int
    index: int
    path: Path
    first_line: int
    line_count: int
    bytes: int
    blank_lines: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    line_offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def record_lines(self) -> np.ndarray:
        """Part line number of each record, indexed by record ordinal - 1."""
        lines = np.arange(self.first_line, self.first_line + self.line_count, dtype=np.int64)
        if self.blank_lines.size:
            lines = lines[~np.isin(lines, self.blank_lines)]
        return lines

    def read_line(self, line: int, limit: int = 65536) -> str:
        """Raw text of one part line held by this segment (for quarantine evidence)."""
        offset_index = line - self.first_line
        start = int(self.line_offsets[offset_index])
        end = int(self.line_offsets[offset_index + 1]) if offset_index + 1 < self.line_offsets.size else self.bytes
        with open(self.path, "rb") as handle:
            handle.seek(start)
            data = handle.read(min(end - start, limit))
        return data.decode("utf-8", errors="replace").rstrip("\r\n")


# what DuckDB skips as a blank line (bytes.strip() agrees): vertical tab and form feed too
_WHITESPACE = np.frombuffer(b" \t\r\x0b\x0c", dtype=np.uint8)


class _SegmentWriter:
    """Cuts a part's decompressed stream into line-aligned segment files with the byte checks."""

    def __init__(self, part: PartRef, part_index: int, work_dir: Path, limits: Limits) -> None:
        self.part, self.part_index, self.work_dir, self.limits = part, part_index, work_dir, limits
        self.carry = b""
        self.next_line = 1  # part line number of the next complete line
        self.segment_index = 0
        self._open_segment()

    def _open_segment(self) -> None:
        self.seg_path = self.work_dir / f"p{self.part_index:05d}-s{self.segment_index:04d}.jsonl"
        self.seg_handle = open(self.seg_path, "wb")  # noqa: SIM115 - closed by _close_segment
        self.seg_first_line = self.next_line
        self.seg_bytes = 0
        self.seg_blanks: list[np.ndarray] = []
        self.seg_offsets: list[np.ndarray] = []

    def _close_segment(self) -> Segment:
        self.seg_handle.close()
        segment = Segment(
            part=self.part.name,
            part_index=self.part_index,
            index=self.segment_index,
            path=self.seg_path,
            first_line=self.seg_first_line,
            line_count=self.next_line - self.seg_first_line,
            bytes=self.seg_bytes,
            blank_lines=np.concatenate(self.seg_blanks) if self.seg_blanks else np.zeros(0, dtype=np.int64),
            line_offsets=np.concatenate(self.seg_offsets) if self.seg_offsets else np.zeros(0, dtype=np.int64),
        )
        self.segment_index += 1
        return segment

    def feed(self, data: bytes, *, final: bool = False) -> list[Segment]:
        """Take decompressed bytes; returns the segments that filled up (usually none)."""
        done: list[Segment] = []
        for buf, start, end in self._complete_ranges(data, final):
            done += self._write_complete(buf, start, end, final)
        if len(self.carry) > self.limits.max_line_bytes:
            raise DeltaRejected(
                f"line longer than {self.limits.max_line_bytes} bytes", part=self.part.name, line=self.next_line
            )
        return done

    def _complete_ranges(self, data: bytes, final: bool) -> list[tuple[bytes, int, int]]:
        """The complete lines of carry + ``data`` as (buffer, start, end) ranges.

        Only the line that straddles the previous chunk and this one is joined into a new
        buffer; the rest of the chunk is used where it is, as a range: copying a 16 MiB chunk
        to cut its partial last line off cost a fresh allocation and a copy per chunk.
        """
        if final:
            tail = self.carry + data
            self.carry = b""
            if tail and not tail.endswith(b"\n"):
                tail += b"\n"
            return [(tail, 0, len(tail))] if tail else []
        last = data.rfind(b"\n")
        if last < 0:
            self.carry += data
            return []
        ranges: list[tuple[bytes, int, int]] = []
        start = 0
        if self.carry:
            start = data.find(b"\n") + 1
            joined = self.carry + data[:start]
            ranges.append((joined, 0, len(joined)))
        if start <= last:
            ranges.append((data, start, last + 1))
        self.carry = data[last + 1 :]
        return ranges

    def _write_complete(self, buf: bytes, start: int, end: int, final: bool) -> list[Segment]:
        """Check the complete lines ``buf[start:end]`` once, then share them out to segments."""
        newlines = _newline_positions(buf, start, end)
        starts = np.concatenate(([start], newlines[:-1] + 1))
        blank = self._checked_blank_lines(buf, starts, newlines)
        done: list[Segment] = []
        first, count = 0, int(newlines.size)
        while first < count:
            room = self._segment_target() - self.seg_bytes
            # the lines that end within the room; at least one, so a long line overshoots
            stop = max(int(np.searchsorted(newlines, starts[first] + room - 1, side="right")), first + 1)
            self._append_lines(buf, starts[first:stop], newlines[first:stop], blank[first:stop])
            first = stop
            if self.seg_bytes >= self._segment_target() and (first < count or not final):
                done.append(self._close_segment())
                self._open_segment()
        return done

    def finish(self) -> list[Segment]:
        done = self.feed(b"", final=True)
        done.append(self._close_segment())
        return done

    def _segment_target(self) -> int:
        """Bytes in the current segment before it is handed over.

        The very first segment of a file is a quarter size: parsing waits for it, so a small
        one puts the second core to work sooner; later ones are full size.
        """
        if self.part_index == 0 and self.segment_index == 0:
            return max(self.limits.segment_bytes // 4, 1)
        return self.limits.segment_bytes

    def _checked_blank_lines(self, buf: bytes, starts: np.ndarray, newlines: np.ndarray) -> np.ndarray:
        """Raise on an over-long line or a misplaced byte order mark; return which lines are blank.

        A UTF-8 byte order mark is what Windows tools put at the start of a file, and DuckDB's
        reader skips it there, so the first line of a part may carry one. Anywhere else DuckDB
        refuses the line (a segment file starting with it would slip through), so it is refused
        here, with its line, before any parsing.
        """
        first = self.next_line
        lengths = newlines - starts  # without the newline
        too_long = np.flatnonzero(lengths > self.limits.max_line_bytes)
        if too_long.size:
            raise DeltaRejected(
                f"line longer than {self.limits.max_line_bytes} bytes",
                part=self.part.name,
                line=first + int(too_long[0]),
            )
        a = np.frombuffer(buf, dtype=np.uint8)
        blank = lengths == 0
        leading = a[np.minimum(starts, a.size - 1)]
        maybe_ws = np.flatnonzero(~blank & np.isin(leading, _WHITESPACE))
        for i in maybe_ws.tolist():
            if not buf[starts[i] : newlines[i]].strip():
                blank[i] = True
        for i in np.flatnonzero(~blank & (leading == UTF8_BOM[0])).tolist():
            begin = int(starts[i])
            if buf[begin : begin + len(UTF8_BOM)] != UTF8_BOM:
                continue
            if first + i != 1:
                raise DeltaRejected(
                    "line starts with a UTF-8 byte order mark (U+FEFF); only the first line of a part may",
                    part=self.part.name,
                    line=first + i,
                )
            if not buf[begin + len(UTF8_BOM) : newlines[i]].strip():
                blank[i] = True  # DuckDB skips the mark and then sees a blank line
        return blank

    def _append_lines(self, buf: bytes, starts: np.ndarray, newlines: np.ndarray, blank: np.ndarray) -> None:
        """Write checked lines to the open segment and record their numbers and offsets."""
        if blank.any():
            self.seg_blanks.append(self.next_line + np.flatnonzero(blank).astype(np.int64))
        begin, stop = int(starts[0]), int(newlines[-1]) + 1
        self.seg_offsets.append(self.seg_bytes + (starts - begin).astype(np.int64))
        self.seg_handle.write(memoryview(buf)[begin:stop])
        self.seg_bytes += stop - begin
        self.next_line += int(newlines.size)


def _newline_positions(buf: bytes, start: int = 0, end: int | None = None) -> np.ndarray:
    """Offsets (in ``buf``) of the newlines in ``buf[start:end]``.

    A ``find`` loop runs at memchr speed and costs one Python step per line, which for records
    of kilobytes is a third of numpy's full-buffer compare; a buffer of many short lines (blank
    padding, hostile input) switches to numpy, whose cost is per byte, not per line.
    """
    end = len(buf) if end is None else end
    found: list[int] = []
    budget = (end - start) // 256 + 16
    find = buf.find
    position = find(b"\n", start, end)
    while position >= 0:
        found.append(position)
        if len(found) > budget:
            window = np.frombuffer(buf, dtype=np.uint8, count=end - start, offset=start)
            return np.flatnonzero(window == 0x0A) + start
        position = find(b"\n", position + 1, end)
    return np.array(found, dtype=np.int64)


def iter_segments(
    path: str | Path,
    work_dir: str | Path,
    limits: Limits | None = None,
    *,
    parts: list[PartRef] | None = None,
    part_indexes: list[int] | None = None,
) -> Iterator[Segment]:
    """Decompress the parts of ``path`` into line-aligned segment files under ``work_dir``.

    Raises DeltaRejected on any container, size or line-length problem. ``parts`` /
    ``part_indexes`` select a subset (bulk staging runs one part per call); the index is the
    part's position in :func:`list_parts`, used to keep record identities globally ordered.
    """
    path = Path(path)
    limits = limits or Limits()
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    all_parts = list_parts(path)
    if parts is None:
        parts = all_parts
        part_indexes = list(range(len(all_parts)))
    elif part_indexes is None:
        names = [p.name for p in all_parts]
        part_indexes = [names.index(p.name) for p in parts]
    for part, part_index in zip(parts, part_indexes, strict=True):
        writer = _SegmentWriter(part, part_index, work_dir, limits)
        try:
            for chunk in _decompressed_chunks(path, part, limits):
                yield from writer.feed(chunk)
            for last in writer.finish():
                if last.line_count or last.index == 0:
                    yield last
                else:
                    last.path.unlink(missing_ok=True)
        finally:
            if not writer.seg_handle.closed:
                writer.seg_handle.close()
