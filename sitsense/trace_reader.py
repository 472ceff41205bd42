"""Reading trace files in chunks, so memory stays bounded whatever the trace's length.

``TraceReader(path)`` reads the header when it is made; ``chunks()`` then yields the samples
as ``Trace`` pieces of about ``chunk_bytes`` of text each (plain or gzip; a gzip is inflated
piece by piece, so a small file that inflates to gigabytes costs no more than a plain one).
Every line is checked as it goes by: its fields, its numbers, its label, time strictly
increasing across pieces. A bad file gives one line naming the file, the line and the problem,
the same whatever the chunk size.

Parsing is numpy over whole pieces, no Python per line. Lines laid out like the piece's first
(what sitsense writes: the same digits and decimals in each column) are checked with a few
``bytes.translate`` and comparisons (their skeleton, their labels, their signs), and their
digits read as an (n, digits) matrix, two columns at a time; a piece is cut where the layout
changes (``t`` passing 10 s, 100 s, ...). Each number is its digits as an integer over a power of
ten, exactly what ``float()`` gives for its text. Other layouts go through numpy's integer
parser, the separators' positions checked, and anything unusual (blank lines, spaces, exponents,
bad lines) through a line-by-line reader that also names the first bad line. One module on purpose, though long: the
fast paths and the line-by-line reader must agree on every sample and every message.
"""

from __future__ import annotations

import functools
import gzip
import io
import math
import re
import warnings
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np

from .errors import TraceError
from .heap import HeapTrimmer
from .traces import (COLUMNS, LABEL_CODE, LABELS, MAGIC, NO_LABEL, Trace, metadata_sample_rate_hz,
                     metadata_start_time, parse_start_time)

CHUNK_BYTES = 1 << 18  # text per parsed piece: memory is a small multiple of it (and 256 KiB parse fastest)
MAX_LINE_BYTES = 1 << 20  # a sample line is under 100 bytes, a metadata line a few kB
MAX_HEADER_BYTES = 1 << 20  # everything before the column line
MAX_T_S = 1e9  # about 31 years
NUMERIC = COLUMNS[:4]


@dataclass(frozen=True)
class TraceSummary:
    """What a full pass over a trace found: how many samples and the time they span."""

    samples: int
    first_t_s: float
    last_t_s: float
    labelled: bool  # at least one sample has a label

    @property
    def duration_s(self) -> float:
        return self.last_t_s - self.first_t_s


class TraceReader:
    """A trace file read in chunks; the header is read (and checked) when the reader is made."""

    def __init__(self, path: str | Path, *, chunk_bytes: int | None = None):
        p = Path(path)
        self.path: Path | None = p  # None for a trace held in memory
        self.source = str(p)
        self.chunk_bytes = max(int(chunk_bytes or CHUNK_BYTES), 1)
        try:
            self.size_bytes = p.stat().st_size
        except FileNotFoundError:
            raise TraceError(f"{p}: no such trace file") from None
        except OSError as exc:
            raise TraceError(f"{p}: cannot read trace: {exc.strerror or exc}") from None
        self._opener: Callable[[], tuple[BinaryIO, BinaryIO]] = self._open_file
        self._init_header()

    @classmethod
    def from_bytes(cls, raw: bytes, source: str = "<trace>", *, chunk_bytes: int | None = None) -> "TraceReader":
        """A reader over the text of a trace held in memory (not compressed)."""
        self = cls.__new__(cls)
        self.path = None
        self.source = source
        self.chunk_bytes = max(int(chunk_bytes or CHUNK_BYTES), 1)
        self.size_bytes = len(raw)
        self._opener = lambda: (io.BytesIO(raw),) * 2
        self._init_header()
        return self

    # ------------------------------------------------------------------ header

    def _init_header(self) -> None:
        self.position = 0  # bytes of the file consumed by the current pass (for progress bars)
        self._summary: TraceSummary | None = None
        with _Pass(self) as lines:
            self.metadata, self.labelled_layout, self.header_line = _parse_header(lines, self.source)
        _check_metadata(self.metadata, self.source)

    @property
    def start_time(self) -> datetime | None:
        return metadata_start_time(self.metadata)

    @property
    def sample_rate_hz(self) -> float:
        """From the metadata; a trace without it is scanned once (as the whole-file reader always did)."""
        def span() -> tuple[int, float]:
            s = self.summary()
            return s.samples, s.duration_s

        return metadata_sample_rate_hz(self.metadata, span)

    # ------------------------------------------------------------------ samples

    def chunks(self) -> Iterator[Trace]:
        """The samples, piece by piece, from the start of the file (each call reads it again)."""
        with _Pass(self) as lines:
            _parse_header(lines, self.source)  # checked when the reader was made; skip it
            parser = _BodyParser(self.source, labelled=self.labelled_layout)
            heap = HeapTrimmer()  # a long read would otherwise fragment the C heap (see heap.py)
            for piece in lines.pieces():
                heap.tick()
                t, acc, labels, line_count = parser.parse(piece, lines.line_no + 1)
                lines.line_no += line_count
                if len(t):
                    yield Trace(t, acc, labels, self.metadata, self.source)
            if parser.rows == 0:
                raise TraceError(f"{self.source}: no samples after the header (line {self.header_line})")

    def read(self) -> Trace:
        """The whole trace in memory (for short traces; long ones are better streamed)."""
        parts = list(self.chunks())
        t = np.concatenate([p.t_s for p in parts])
        acc = np.concatenate([p.accel_g for p in parts])
        labels = None
        if self.labelled_layout:
            labels = np.concatenate([p.labels for p in parts])
            if (labels == NO_LABEL).all():
                labels = None
        return Trace(t, acc, labels, self.metadata, self.source)

    def summary(self) -> TraceSummary:
        """One full pass: every line checked, samples counted (cached)."""
        if self._summary is None:
            n, first, last, labelled = 0, math.nan, math.nan, False
            for part in self.chunks():
                if n == 0:
                    first = float(part.t_s[0])
                n += len(part)
                last = float(part.t_s[-1])
                labelled = labelled or (part.labels is not None and bool((part.labels != NO_LABEL).any()))
            self._summary = TraceSummary(n, first, last, labelled)
        return self._summary

    def _open_file(self) -> tuple[BinaryIO, BinaryIO]:
        """(the stream of text, the file underneath it): gzip by suffix or by its magic bytes."""
        assert self.path is not None
        raw = open(self.path, "rb")
        try:
            magic = raw.read(2)
            raw.seek(0)
        except OSError:
            raw.close()
            raise
        if self.path.suffix == ".gz" or magic == b"\x1f\x8b":
            return gzip.GzipFile(fileobj=raw, mode="rb"), raw  # type: ignore[return-value]  # GzipFile is a binary stream
        return raw, raw


def read_trace(path: str | Path) -> Trace:
    """Read a ``.csv`` or ``.csv.gz`` trace whole; raise TraceError naming file, line and problem."""
    return TraceReader(path).read()


def parse_trace(raw: bytes, source: str = "<trace>") -> Trace:
    """Parse the bytes of a trace file."""
    return TraceReader.from_bytes(raw, source).read()


# ---------------------------------------------------------------- lines from a stream

class _Pass:
    """One pass over the file: opens it, hands out lines (header) and pieces of whole lines (body).

    The text waiting to be handed out is ``buf[at:]``; it never holds more than a chunk plus one
    line, and a line longer than MAX_LINE_BYTES is an error before it is read to its end.
    """

    def __init__(self, reader: TraceReader):
        self.reader = reader
        self.source = reader.source
        self.chunk_bytes = reader.chunk_bytes
        self.buf = b""
        self.at = 0
        self.line_no = 0  # lines handed out so far
        self.header_bytes = 0  # bytes handed out by next_line
        self.eof = False

    def __enter__(self) -> "_Pass":
        try:
            self.stream, self.raw = self.reader._opener()
        except FileNotFoundError:
            raise TraceError(f"{self.source}: no such trace file") from None
        except OSError as exc:
            raise TraceError(f"{self.source}: cannot read trace: {exc.strerror or exc}") from None
        self.reader.position = 0
        return self

    def __exit__(self, *exc) -> None:
        for f in {id(self.stream): self.stream, id(self.raw): self.raw}.values():
            try:
                f.close()
            except Exception:  # noqa: BLE001 - closing a file we only read must not hide the real error
                pass

    def _read(self) -> bytes:
        """The next ``chunk_bytes`` of text (inflated), the reader's position kept; TraceError if unreadable."""
        try:
            data = self.stream.read(self.chunk_bytes)
            self.reader.position = self.raw.tell()
        except (OSError, EOFError, zlib.error) as exc:
            raise TraceError(f"{self.source}: cannot read trace: {exc}") from None
        return data

    def _fill(self) -> bool:
        """Read more text into the buffer; False at the end of the file with nothing left."""
        if self.eof:
            return False
        data = self._read()
        rest = self.buf[self.at:]
        self.at = 0
        if not data:
            self.eof = True
            if rest and not rest.endswith(b"\n"):
                rest += b"\n"  # a last line without its line break
            self.buf = rest
            return bool(rest)
        self.buf = rest + data
        return True

    def _too_long(self, line_no: int) -> TraceError:
        return TraceError(f"{self.source}: line {line_no}: longer than {MAX_LINE_BYTES // 1024} KiB "
                          "(a sample line is under 100 bytes): not a sitsense trace?")

    def next_line(self) -> bytes | None:
        """The next line without its line break (for the header), or None at the end."""
        while True:
            end = self.buf.find(b"\n", self.at)
            if end >= 0:
                line = self.buf[self.at:end]
                self.at = end + 1
                self.line_no += 1
                if len(line) > MAX_LINE_BYTES:
                    raise self._too_long(self.line_no)
                self.header_bytes += len(line) + 1
                if self.header_bytes > MAX_HEADER_BYTES:
                    raise TraceError(f"{self.source}: line {self.line_no}: the header (everything before the "
                                     f"column line t,ax,ay,az,label) is longer than {MAX_HEADER_BYTES // 1024} KiB")
                return line
            if len(self.buf) - self.at > MAX_LINE_BYTES:
                raise self._too_long(self.line_no + 1)
            if not self._fill():
                return None

    def pieces(self) -> Iterator[bytes]:
        """Pieces of whole lines, each ending with a line break, of about ``chunk_bytes``; the
        consumer counts their lines into ``line_no`` before asking for the next piece."""
        rest = self.buf[self.at:]
        self.buf, self.at = b"", 0
        while not self.eof:
            data = self._read()
            if not data:
                self.eof = True
                break
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # no line ends in this read
                rest += data
                if len(rest) > MAX_LINE_BYTES:
                    done = rest.rfind(b"\n") + 1
                    if done:  # the lines before the long one first: their problems come first
                        yield rest[:done]
                        rest = rest[done:]
                    if len(rest) > MAX_LINE_BYTES:
                        raise self._too_long(self.line_no + 1)
                continue
            yield b"".join((rest, memoryview(data)[:cut])) if rest else data[:cut]
            rest = data[cut:]
        if rest:
            done = rest.rfind(b"\n") + 1
            if len(rest) - done > MAX_LINE_BYTES:  # the last line, without its line break
                if done:
                    yield rest[:done]
                raise self._too_long(self.line_no + 1)
            yield rest if done == len(rest) else rest + b"\n"


# ---------------------------------------------------------------- header

def _show(text: str, limit: int = 60) -> str:
    """A value for an error line: quoted, and cut short if long."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


def _parse_header(lines: _Pass, source: str) -> tuple[dict[str, str], bool, int]:
    """(metadata, whether there is a label column, the column line's number)."""
    metadata: dict[str, str] = {}
    first = lines.next_line()
    first_text = (first or b"").decode("utf-8", errors="replace").strip()
    if first_text != MAGIC:
        raise TraceError(f"{source}: line 1: expected '{MAGIC}' as the first line (found {first_text[:40]!r})")
    while (raw := lines.next_line()) is not None:
        line = raw.decode("utf-8", errors="replace").strip()
        if not line:
            continue
        if line.startswith("#"):
            body = line[1:].strip()
            if "=" in body:  # else a plain comment
                k, v = body.split("=", 1)
                metadata[k.strip()] = v.strip()
            continue
        columns = [c.strip() for c in line.split(",")]
        for needed in NUMERIC:
            if needed not in columns:
                raise TraceError(f"{source}: line {lines.line_no}: missing column '{needed}' in header "
                                 f"(expected t,ax,ay,az[,label])")
        if columns[:4] != list(NUMERIC) or len(columns) > 5 or (len(columns) == 5 and columns[4] != "label"):
            raise TraceError(f"{source}: line {lines.line_no}: header must be 't,ax,ay,az' or "
                             f"'t,ax,ay,az,label' (found {_show(line)})")
        return metadata, len(columns) == 5, lines.line_no
    raise TraceError(f"{source}: missing the column header line 't,ax,ay,az,label'")


def _check_metadata(metadata: dict[str, str], source: str) -> None:
    if "sample_rate_hz" in metadata:
        text = metadata["sample_rate_hz"]
        try:
            rate = float(text)
            ok = math.isfinite(rate) and rate > 0
        except ValueError:
            ok = False
        if not ok:
            raise TraceError(f"{source}: metadata sample_rate_hz={_show(text, 40)} is not a positive number")
    if "start_time" in metadata and parse_start_time(metadata["start_time"]) is None:
        raise TraceError(f"{source}: metadata start_time={_show(metadata['start_time'], 40)} must be ISO 8601 "
                         "with a UTC offset, e.g. 2026-03-02T09:00:00+01:00")


# ---------------------------------------------------------------- body

_LONGEST_LABEL = max(len(name) for name in LABELS)
# (label length, first byte) -> the only label it can be; -1: empty label; -2: none
_CANDIDATE = np.full((_LONGEST_LABEL + 1, 256), -2, dtype=np.int8)
_CANDIDATE[0, ord("\n")] = NO_LABEL
_LABEL_LINES = {code: name.encode() + b"\n" for code, name in enumerate(LABELS)}
_LABEL_LINES[NO_LABEL] = b"\n"
for _code, _name in enumerate(LABELS):
    _raw = _name.encode()
    assert _CANDIDATE[len(_raw), _raw[0]] == -2, "two labels share a length and a first letter"
    _CANDIDATE[len(_raw), _raw[0]] = _code
_LETTERS = bytes(range(ord("a"), ord("z") + 1)) + b"_"
_NOT_DIGITS = bytes(b for b in range(256) if not ord("0") <= b <= ord("9"))
_NOT_LABEL_TEXT = bytes(b for b in range(256) if b not in _LETTERS + b"\n")
# the skeleton of a line: every digit becomes '0', every letter 'a', the minus signs go
_SKELETON = bytes.maketrans(b"0123456789" + _LETTERS, b"0" * 10 + b"a" * len(_LETTERS))
_TEMPLATE_FIELD = re.compile(rb"(0+)(?:\.(0+))?")
_POW10 = 10.0 ** np.arange(23)
_EXACT = 2 ** 53  # integers below this are exact in float64; so is m / 10**d, rounded once
_COMMA, _DOT, _MINUS, _NL = b",.-\n"


def _separator_patterns(labelled: bool) -> list[tuple[bool, np.ndarray]]:
    """The separators of one good line in order, with and without a '.' in every number."""
    k = len(NUMERIC)
    commas = k - 1 + labelled
    with_dots = [_DOT, _COMMA] * (k - 1) + [_DOT] + [_COMMA] * (commas - (k - 1)) + [_NL]
    without = [_COMMA] * commas + [_NL]
    return [(True, np.array(with_dots, dtype=np.uint8)), (False, np.array(without, dtype=np.uint8))]


_PATTERNS = {labelled: _separator_patterns(labelled) for labelled in (False, True)}


class _BodyParser:
    """Parses pieces of body lines in order; carries the last time across pieces."""

    def __init__(self, source: str, *, labelled: bool):
        self.source = source
        self.labelled = labelled
        self.columns = list(NUMERIC) + (["label"] if labelled else [])
        self.prev_t: float | None = None
        self.rows = 0

    def parse(self, piece: bytes, first_line: int):
        """(t_s, accel_g, label codes or None, the number of lines in the piece)."""
        if b"\r" in piece:
            piece = piece.replace(b"\r\n", b"\n")
        parts = []
        line = first_line
        while piece:
            got = _parse_alike(piece, self.labelled)
            if got is None:
                got = _parse_varied(piece, self.labelled)
                used = len(piece)
            else:
                got, used = got[:3], got[3]
            if got is None:
                parts.append(self._parse_slow(piece, line))
                self.prev_t = float(parts[-1][0][-1]) if len(parts[-1][0]) else self.prev_t
                line += piece.count(b"\n")
                break
            self._check_times(got[0], line)
            self.prev_t = float(got[0][-1])
            parts.append(got)
            line += len(got[0])
            piece = piece[used:]
        self.rows += sum(len(p[0]) for p in parts)
        if len(parts) == 1:
            t, acc, labels = parts[0]
        else:
            t = np.concatenate([p[0] for p in parts])
            acc = np.concatenate([p[1] for p in parts]).reshape(-1, 3)
            labels = np.concatenate([p[2] for p in parts]) if self.labelled else None
        return t, acc, labels, line - first_line

    def _error(self, line_no: int, problem: str) -> TraceError:
        return TraceError(f"{self.source}: line {line_no}: {problem}")

    def _time_problem(self, t: float, prev: float | None) -> str | None:
        if abs(t) > MAX_T_S:
            return (f"t={t:.6g} s is more than {MAX_T_S:.0e} s (about 31 years) from the start; "
                    "t counts seconds from the start")
        if prev is not None and not t > prev:
            return f"time goes backwards or repeats (t={t:.3f} after t={prev:.3f}); t must strictly increase"
        return None

    def _check_times(self, t: np.ndarray, first_line: int) -> None:
        """Lines of a fast-parsed piece are consecutive: row i is line first_line + i."""
        bad = np.abs(t) > MAX_T_S
        if self.prev_t is not None:
            bad[0] |= not t[0] > self.prev_t
        bad[1:] |= ~(t[1:] > t[:-1])
        if bad.any():
            i = int(np.argmax(bad))
            prev = self.prev_t if i == 0 else float(t[i - 1])
            raise self._error(first_line + i, self._time_problem(float(t[i]), prev) or "bad time")

    def _parse_slow(self, piece: bytes, first_line: int):
        """Line by line, every check in the order of the file; the first problem is the one named."""
        ncol = len(self.columns)
        ts: list[float] = []
        accs: list[list[float]] = []
        labs: list[int] = []
        prev = self.prev_t
        text = piece.decode("utf-8", errors="replace")
        for i, line in enumerate(text.split("\n")[:-1]):
            line_no = first_line + i
            if len(line) > MAX_LINE_BYTES:
                raise self._error(line_no, f"longer than {MAX_LINE_BYTES // 1024} KiB (a sample line is under "
                                           "100 bytes): not a sitsense trace?")
            if not line.strip():
                continue
            parts = line.split(",")
            if len(parts) != ncol:
                raise self._error(line_no, f"expected {ncol} fields ({','.join(self.columns)}), found {len(parts)}")
            vals = []
            for name, part in zip(NUMERIC, parts[:4]):
                try:
                    v = float(part)
                except ValueError:
                    raise self._error(line_no, f"column '{name}' is not a number ({part.strip()[:20]!r})") from None
                if not math.isfinite(v):
                    raise self._error(line_no, f"column '{name}' is not finite ({part.strip()[:20]!r})")
                vals.append(v)
            if self.labelled:
                lab = parts[4].strip()
                if lab and lab not in LABEL_CODE:
                    raise self._error(line_no, f"unknown label {lab[:20]!r} (allowed: {', '.join(LABELS)}, or empty)")
                labs.append(LABEL_CODE[lab] if lab else NO_LABEL)
            problem = self._time_problem(vals[0], prev)
            if problem:
                raise self._error(line_no, problem)
            prev = vals[0]
            ts.append(vals[0])
            accs.append(vals[1:])
        t = np.array(ts, dtype=np.float64)
        acc = np.array(accs, dtype=np.float64).reshape(-1, 3)
        labels = np.array(labs, dtype=np.int8) if self.labelled else None
        return t, acc, labels


MAX_SPLITS = 8  # a piece whose layout changes more often than this goes to _parse_varied


def _parse_alike(piece: bytes, labelled: bool, splits: int = MAX_SPLITS):
    """(t_s, accel_g, label codes, bytes used) for the lines at the start of the piece laid out like
    its first: the same skeleton (digits as '0', letters as 'a', signs removed) apart from the
    label's length. A few ``bytes.translate`` and two comparisons check that; the digits are then
    read column by column. None if not even the first line qualifies. Values are exact (see
    _parse_varied)."""
    skeleton = piece.translate(_SKELETON, b"-")
    first = skeleton[:skeleton.find(b"\n") + 1]
    template = _template(first, labelled)
    if template is None:
        return None
    prefix, digits, decimals, field_at = template
    letters = piece.translate(None, _NOT_LABEL_TEXT)  # each line's letters and its line break
    letter_bytes = np.frombuffer(letters, dtype=np.uint8)
    line_ends = np.flatnonzero(letter_bytes == _NL)
    n = len(line_ends)
    if n == 0:
        return None
    lengths = np.empty(n, dtype=np.int64)  # letters per line: the label's length if all is well
    lengths[0] = line_ends[0]
    lengths[1:] = line_ends[1:] - line_ends[:-1] - 1
    good = n  # lines from the start that pass every check
    codes = None
    if labelled:
        too_long = lengths > _LONGEST_LABEL
        codes = _CANDIDATE[np.minimum(lengths, _LONGEST_LABEL), letter_bytes[line_ends - lengths]]
        codes[too_long] = -2
        unknown = np.flatnonzero(codes == -2)
        if len(unknown):
            good = int(unknown[0])
        expected = _runs(codes[:good], _LABEL_LINES.__getitem__)
        if letters[:len(expected)] != expected:
            good = _first_line_differing(letters, expected)
        expected = _runs(lengths[:good], lambda x: prefix + b"a" * x + b"\n")
    else:
        if len(letters) != n:
            good = _first_line_differing(letters, b"\n" * n)
        expected = (prefix + b"\n") * good
    if skeleton[:len(expected)] != expected:
        good = _first_line_differing(skeleton, expected)
    if good < n:  # the layout changes (or something is wrong) at line `good`: parse the lines before
        if good == 0 or splits == 0:
            return None
        cut = int(np.flatnonzero(np.frombuffer(piece, dtype=np.uint8) == _NL)[good - 1]) + 1
        head = _parse_alike(piece[:cut], labelled, splits - 1)
        return None if head is None else head[:3] + (cut,)
    neg = _signs(piece, n, field_at)
    if neg is None:
        return None
    mantissa = _digits_fixed(piece, n, digits, n * int(digits.sum()))
    if mantissa is None:
        return None
    if decimals.any():
        mantissa /= _POW10[decimals][:, None]
    np.negative(mantissa, out=mantissa, where=neg.T)  # also "-0.0" -> negative zero, as float() does
    return mantissa[0], np.ascontiguousarray(mantissa[1:].T), codes, len(piece)


def _first_line_differing(text: bytes, expected: bytes) -> int:
    """The index of the first line where ``text`` and ``expected`` differ."""
    size = min(len(text), len(expected))
    diff = np.flatnonzero(np.frombuffer(text, dtype=np.uint8, count=size)
                          != np.frombuffer(expected, dtype=np.uint8, count=size))
    at = int(diff[0]) if len(diff) else size
    return text.count(b"\n", 0, at)


@functools.lru_cache(maxsize=64)  # a trace has a handful of layouts; pieces share them
def _template(first: bytes, labelled: bool) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray] | None:
    """(the numbers' part of the first line's skeleton, digits and decimals per column, the column
    starting at each offset of the skeleton)."""
    if not first.endswith(b"\n"):
        return None
    line = first[:-1]
    if labelled:
        cut = line.rfind(b",") + 1
        if cut == 0 or line[cut:].strip(b"a"):
            return None
        prefix, fields = line[:cut], line[:cut - 1].split(b",")
    else:
        prefix, fields = line, line.split(b",")
    if len(fields) != len(NUMERIC):
        return None
    digits, decimals = [], []
    for field in fields:
        m = _TEMPLATE_FIELD.fullmatch(field)
        if m is None:
            return None
        decimals.append(len(m.group(2) or b""))
        digits.append(len(m.group(1)) + decimals[-1])
    if max(digits) > 15:
        return None
    field_at = np.full(len(prefix) + 1, -1, dtype=np.int64)  # skeleton offset -> the number starting there
    offset = 0
    for j, field in enumerate(fields):
        field_at[offset] = j
        offset += len(field) + 1
    return prefix, np.array(digits), np.array(decimals), field_at


def _runs(values: np.ndarray, text: Callable[[int], bytes]) -> bytes:
    """``text(v)`` for every value, joined; built run by run (values change rarely)."""
    change = np.flatnonzero(values[1:] != values[:-1]) + 1
    bounds = [0, *change.tolist(), len(values)]
    if len(values) == 0:
        return b""
    return b"".join(text(int(values[a])) * (b - a) for a, b in zip(bounds[:-1], bounds[1:]))


def _signs(piece: bytes, n: int, field_at: np.ndarray) -> np.ndarray | None:
    """(n, 4): whether each number starts with '-'; None if a '-' is anywhere else.

    A sign's offset in its line, less the signs before it on the line, is its offset in the
    skeleton; ``field_at`` maps skeleton offsets to the number starting there (-1: none).
    """
    arr = np.frombuffer(piece, dtype=np.uint8)
    minus = np.flatnonzero(arr == _MINUS)
    neg = np.zeros((n, len(NUMERIC)), dtype=bool)
    if len(minus) == 0:
        return neg
    ends = np.flatnonzero(arr == _NL)
    line = np.searchsorted(ends, minus)
    starts = np.concatenate(([0], ends[:-1] + 1))
    rank = np.arange(len(minus)) - np.searchsorted(line, line)  # signs before it on its line
    offset = minus - starts[line] - rank
    field = field_at[np.minimum(offset, len(field_at) - 1)]
    if (field < 0).any():
        return None
    neg[line, field] = True
    if np.count_nonzero(neg) != len(minus):
        return None  # two signs on one number
    return neg


def _parse_varied(piece: bytes, labelled: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """Lines laid out differently (a column's width changes): the structure of every line is checked
    from the positions of its separators.

    Accepts only lines made of digits, '.', a leading '-' per number, ',' and a known label, and
    only when every number has a '.' (or none has): then each value is its digits as an integer
    divided by a power of ten, which is exactly how ``float()`` rounds the same text.
    """
    k = len(NUMERIC)
    arr = np.frombuffer(piece, dtype=np.uint8)
    below = arr < 48  # ',' '-' '.' and the line break are all below '0'
    is_minus = arr == _MINUS
    minus = int(np.count_nonzero(is_minus))
    pos = np.flatnonzero(below & ~is_minus if minus else below)
    kind = arr[pos]
    for dotted, pattern in _PATTERNS[labelled]:
        if len(pos) and len(pos) % len(pattern) == 0:
            seen = kind.reshape(-1, len(pattern))
            if (seen == pattern).all():  # every line: the right separators in the right order
                break
    else:
        return None  # blank lines, spaces, a missing field, no '.' in some numbers: the careful reader
    at = pos.reshape(seen.shape)
    n = len(at)
    nl = at[:, -1]
    seps = np.empty((n, k + 1), dtype=np.int64)  # the separator before and after each number
    seps[0, 0] = -1
    seps[1:, 0] = nl[:-1]
    if dotted:
        dots = at[:, 0:2 * k:2]
        seps[:, 1:] = at[:, 1:2 * k:2]
        decimals = seps[:, 1:] - dots - 1
        if decimals.max() > 22:
            return None
    else:
        seps[:, 1:] = at[:, :k]
        decimals = None
    neg = arr[seps[:, :-1] + 1] == _MINUS
    if np.count_nonzero(neg) != minus:
        return None  # a '-' that does not start a number
    digits = seps[:, 1:] - seps[:, :-1] - 1 - dotted - neg
    codes = None
    label_bytes = 0
    if labelled:
        start = seps[:, k] + 1
        length = nl - start
        if length.max() > _LONGEST_LABEL:
            return None
        codes = _CANDIDATE[length, arr[start]]
        if (codes == -2).any() or piece.translate(None, _NOT_LABEL_TEXT) != _runs(codes, _LABEL_LINES.__getitem__):
            return None
        label_bytes = int(length.sum())
    if digits.min() < 1 or digits.max() > 15:
        return None
    expected = len(arr) - label_bytes - len(pos) - minus  # the digits, if nothing else is there
    if (digits == digits[0]).all():
        mantissa = _digits_fixed(piece, n, digits[0], expected)
    else:
        mantissa = _digits_parsed(piece, n, labelled, len(arr) - label_bytes - n * k * dotted)
    if mantissa is None:
        return None
    values = mantissa  # (4, n)
    if decimals is not None:
        if (decimals == decimals[0]).all():
            values /= _POW10[decimals[0]][:, None]
        else:
            values /= _POW10[decimals.T]
    np.negative(values, out=values, where=neg.T)  # also makes "-0.0" negative zero, as float() does
    return values[0], np.ascontiguousarray(values[1:].T), codes


def _digits_fixed(piece: bytes, n: int, digits: np.ndarray, expected: int) -> np.ndarray | None:
    """Each column has the same number of digits on every line: the digit string is an (n, total)
    matrix; its columns are combined in pairs (exact: every value stays below 2**53)."""
    text = piece.translate(None, _NOT_DIGITS)
    total = int(digits.sum())
    if len(text) != expected or len(text) != n * total:
        return None  # a stray character the separators did not show (a letter in a number)
    rows = np.frombuffer(text, dtype=np.uint8).reshape(n, total).T.copy()
    rows -= 48
    out = np.empty((len(digits), n))
    offset = 0
    for j, d in enumerate(digits.tolist()):
        mine = rows[offset:offset + d]
        acc = out[j]
        if d % 2:
            acc[:] = mine[0]
            mine = mine[1:]
        else:
            acc[:] = 0.0
        for pair in mine[0::2] * np.uint8(10) + mine[1::2]:  # two digits: below 100, fits a byte
            acc *= 100.0
            acc += pair
        offset += d
    return out


def _digits_parsed(piece: bytes, n: int, labelled: bool, expected: int) -> np.ndarray | None:
    """Numbers of varying widths: the labels and dots deleted, numpy's integer parser reads the rest."""
    text = piece.translate(None, _LETTERS + b".")
    if len(text) != expected:
        return None  # letters outside the label column
    text = text[:-2] if labelled else text.replace(b"\n", b",")[:-1]  # lines end ",\n" once labels are gone
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # older numpy only warns when the text does not parse to its end
        try:
            ints = np.fromstring(text, dtype=np.int64, sep=",")
        except (ValueError, DeprecationWarning):
            return None
    if len(ints) != n * len(NUMERIC) or ((ints >= _EXACT) | (ints <= -_EXACT)).any():
        return None
    return np.ascontiguousarray(np.abs(ints.reshape(n, len(NUMERIC))).T, dtype=np.float64)
