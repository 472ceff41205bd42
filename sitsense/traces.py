"""Trace files (``# sitsense-trace v1`` CSV, plain or gzip) and the HAPT recording layout.

A trace is timestamps in seconds, acceleration in g and an optional label per sample. Reading
is vectorised (labels are turned into numbers by byte replacement, then numpy parses the whole
text at once); only when that fast path finds something wrong does a line-by-line pass run, to
name the exact line and problem.
"""

from __future__ import annotations

import gzip
import io
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DatasetError, TraceError

MAGIC = "# sitsense-trace v1"
LABELS = ("sitting", "standing", "walking", "lying", "transition", "not_worn", "unknown")
NO_LABEL = -1
LABEL_CODE = {name: i for i, name in enumerate(LABELS)}
COLUMNS = ("t", "ax", "ay", "az", "label")

# HAPT activity ids -> our labels (1-3 walking, 4 sitting, 5 standing, 6 lying, 7-12 transitions)
HAPT_LABELS = {1: "walking", 2: "walking", 3: "walking", 4: "sitting", 5: "standing", 6: "lying",
               **{k: "transition" for k in range(7, 13)}}
HAPT_SAMPLE_RATE_HZ = 50.0
HAPT_ACTIVITY_NAMES = {1: "WALKING", 2: "WALKING_UPSTAIRS", 3: "WALKING_DOWNSTAIRS", 4: "SITTING",
                       5: "STANDING", 6: "LAYING", 7: "STAND_TO_SIT", 8: "SIT_TO_STAND", 9: "SIT_TO_LIE",
                       10: "LIE_TO_SIT", 11: "STAND_TO_LIE", 12: "LIE_TO_STAND"}


@dataclass
class Trace:
    """Samples of one recording: ``t_s`` (n,), ``accel_g`` (n, 3), ``labels`` (n,) int8 codes or None."""

    t_s: np.ndarray
    accel_g: np.ndarray
    labels: np.ndarray | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    source: str = ""
    activity: np.ndarray | None = None  # HAPT only: original activity id per sample (0 = none)

    def __len__(self) -> int:
        return int(self.t_s.shape[0])

    @property
    def sample_rate_hz(self) -> float:
        if "sample_rate_hz" in self.metadata:
            return float(self.metadata["sample_rate_hz"])
        if len(self) > 1:
            return float((len(self) - 1) / (self.t_s[-1] - self.t_s[0]))
        return HAPT_SAMPLE_RATE_HZ

    @property
    def duration_s(self) -> float:
        return float(self.t_s[-1] - self.t_s[0]) if len(self) else 0.0

    @property
    def start_time(self) -> datetime | None:
        text = self.metadata.get("start_time")
        return datetime.fromisoformat(text) if text else None

    def label_names(self) -> np.ndarray:
        """Labels as strings ('' where absent)."""
        if self.labels is None:
            return np.full(len(self), "", dtype=object)
        names = np.array(LABELS + ("",), dtype=object)
        return names[self.labels]


# ---------------------------------------------------------------- reading

def read_trace(path: str | Path) -> Trace:
    """Read a ``.csv`` or ``.csv.gz`` trace; raise TraceError naming file, line and problem."""
    p = Path(path)
    try:
        raw = p.read_bytes()
        if p.suffix == ".gz" or raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise TraceError(f"{p}: no such trace file") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise TraceError(f"{p}: cannot read trace: {exc}") from None
    return parse_trace(raw, source=str(p))


def parse_trace(raw: bytes, source: str = "<trace>") -> Trace:
    """Parse the bytes of a trace file."""
    raw = raw.replace(b"\r\n", b"\n")
    if not raw.endswith(b"\n"):
        raw += b"\n"
    metadata, columns, body_start, header_line = _parse_header(raw, source)
    body = raw[body_start:]
    try:
        t, acc, labels = _fast_body(body, columns)
    except _NeedSlowPath:
        t, acc, labels = _slow_body(body, columns, source, header_line)
    _check_values(t, acc, source, header_line)
    if len(t) == 0:
        raise TraceError(f"{source}: no samples after the header (line {header_line})")
    if "sample_rate_hz" in metadata:
        try:
            rate = float(metadata["sample_rate_hz"])
            assert math.isfinite(rate) and rate > 0
        except (ValueError, AssertionError):
            raise TraceError(f"{source}: metadata sample_rate_hz={metadata['sample_rate_hz']!r} "
                             "is not a positive number") from None
    if "start_time" in metadata and parse_start_time(metadata["start_time"]) is None:
        raise TraceError(f"{source}: metadata start_time={metadata['start_time']!r} must be ISO 8601 "
                         "with a UTC offset, e.g. 2026-03-02T09:00:00+01:00")
    return Trace(t, acc, labels, metadata, source)


def parse_start_time(text: str) -> datetime | None:
    """A trace's ``start_time``: ISO 8601 with a UTC offset, else None."""
    try:
        st = datetime.fromisoformat(text)
    except ValueError:
        return None
    return st if st.tzinfo is not None else None


def _parse_header(raw: bytes, source: str) -> tuple[dict[str, str], list[str], int, int]:
    metadata: dict[str, str] = {}
    pos = 0
    line_no = 0
    first = True
    while pos < len(raw):
        end = raw.index(b"\n", pos)
        line = raw[pos:end].decode("utf-8", errors="replace").strip()
        line_no += 1
        pos = end + 1
        if first:
            first = False
            if line != MAGIC:
                raise TraceError(f"{source}: line 1: expected '{MAGIC}' as the first line "
                                 f"(found {line[:40]!r})")
            continue
        if not line:
            continue
        if line.startswith("#"):
            body = line[1:].strip()
            if "=" not in body:
                continue  # a plain comment
            k, v = body.split("=", 1)
            metadata[k.strip()] = v.strip()
            continue
        columns = [c.strip() for c in line.split(",")]
        for needed in COLUMNS[:4]:
            if needed not in columns:
                raise TraceError(f"{source}: line {line_no}: missing column '{needed}' in header "
                                 f"(expected t,ax,ay,az[,label])")
        if columns[:4] != list(COLUMNS[:4]) or len(columns) > 5 or (len(columns) == 5 and columns[4] != "label"):
            raise TraceError(f"{source}: line {line_no}: header must be 't,ax,ay,az' or "
                             f"'t,ax,ay,az,label' (found {line!r})")
        return metadata, columns, pos, line_no
    raise TraceError(f"{source}: missing the column header line 't,ax,ay,az,label'")


class _NeedSlowPath(Exception):
    pass


_NUMERIC = [("t", "f8"), ("ax", "f8"), ("ay", "f8"), ("az", "f8")]
_LONGEST_LABEL = max(len(name) for name in LABEL_CODE)


def _fast_body(body: bytes, columns: list[str]):
    """numpy's C parser in one pass; anything unusual raises _NeedSlowPath, which names the line."""
    ncol = len(columns)
    # one byte longer than any label, so an unknown longer word cannot pass as a known prefix
    dtype = np.dtype(_NUMERIC + ([("label", f"S{_LONGEST_LABEL + 1}")] if ncol == 5 else []))
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data" is reported by the caller
            rows = np.loadtxt(io.BytesIO(body), delimiter=",", dtype=dtype, ndmin=1, comments=None)
    except ValueError:
        raise _NeedSlowPath from None
    t = rows["t"].copy()
    acc = np.stack([rows["ax"], rows["ay"], rows["az"]], axis=1)
    labels = None
    if ncol == 5:
        raw = rows["label"]
        labels = np.full(len(rows), NO_LABEL, dtype=np.int8)
        known = raw == b""
        for name, code in LABEL_CODE.items():
            hit = raw == name.encode()
            labels[hit] = code
            known |= hit
        if not known.all():
            raise _NeedSlowPath  # an unknown label: the slow path says which line
        if (labels == NO_LABEL).all():
            labels = None
    return t, acc, labels


def _slow_body(body: bytes, columns: list[str], source: str, header_line: int):
    ncol = len(columns)
    ts, accs, labs = [], [], []
    text = body.decode("utf-8", errors="replace")
    for i, line in enumerate(text.split("\n")):
        line_no = header_line + 1 + i
        if not line.strip():
            continue
        parts = line.split(",")
        if len(parts) != ncol:
            raise TraceError(f"{source}: line {line_no}: expected {ncol} fields ({','.join(columns)}), "
                             f"found {len(parts)}")
        vals = []
        for name, part in zip(COLUMNS[:4], parts[:4]):
            try:
                v = float(part)
            except ValueError:
                raise TraceError(f"{source}: line {line_no}: column '{name}' is not a number "
                                 f"({part.strip()[:20]!r})") from None
            if not math.isfinite(v):
                raise TraceError(f"{source}: line {line_no}: column '{name}' is not finite ({part.strip()!r})")
            vals.append(v)
        if ncol == 5:
            lab = parts[4].strip()
            if lab and lab not in LABEL_CODE:
                raise TraceError(f"{source}: line {line_no}: unknown label {lab[:20]!r} "
                                 f"(allowed: {', '.join(LABELS)}, or empty)")
            labs.append(LABEL_CODE[lab] if lab else NO_LABEL)
        ts.append(vals[0])
        accs.append(vals[1:])
    t = np.array(ts, dtype=np.float64)
    acc = np.array(accs, dtype=np.float64).reshape(-1, 3)
    labels = np.array(labs, dtype=np.int8) if ncol == 5 else None
    if labels is not None and (labels == NO_LABEL).all():
        labels = None
    return t, acc, labels


MAX_T_S = 1e9


def _check_values(t: np.ndarray, acc: np.ndarray, source: str, header_line: int) -> None:
    bad = ~np.isfinite(t) | ~np.isfinite(acc).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise TraceError(f"{source}: line {_line_of(i, header_line)}: value is not finite")
    far = np.abs(t) > MAX_T_S
    if far.any():
        i = int(np.argmax(far))
        raise TraceError(f"{source}: line {_line_of(i, header_line)}: t={t[i]:.6g} s is more than "
                         f"{MAX_T_S:.0e} s (about 31 years) from the start; t counts seconds from the start")
    if len(t) > 1:
        back = np.diff(t) <= 0
        if back.any():
            i = int(np.argmax(back)) + 1
            raise TraceError(f"{source}: line {_line_of(i, header_line)}: time goes backwards or repeats "
                             f"(t={t[i]:.3f} after t={t[i - 1]:.3f}); t must strictly increase")


def _line_of(row: int, header_line: int) -> int:
    return header_line + 1 + row  # blank lines in the body are rare; the slow path counts them exactly


# ---------------------------------------------------------------- writing

def write_trace(path: str | Path, trace: Trace, *, decimals: int = 4) -> None:
    """Write a trace as ``.csv`` or ``.csv.gz`` (by suffix), atomically (temp file, then rename)."""
    p = Path(path)
    text = format_trace(trace, decimals=decimals)
    data = text.encode()
    if p.suffix == ".gz":
        data = gzip.compress(data, compresslevel=6, mtime=0)
    tmp = p.with_name(p.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(p)


def format_trace(trace: Trace, *, decimals: int = 4) -> str:
    meta = dict(trace.metadata)
    meta.setdefault("sample_rate_hz", f"{trace.sample_rate_hz:g}")
    out = io.StringIO()
    out.write(MAGIC + "\n")
    for k, v in meta.items():
        out.write(f"# {k}={v}\n")
    has_labels = trace.labels is not None
    out.write("t,ax,ay,az,label\n" if has_labels else "t,ax,ay,az\n")
    cols: list[Any] = [_fmt(trace.t_s, 3)] + [_fmt(trace.accel_g[:, i], decimals) for i in range(3)]
    if has_labels:
        names = np.array(LABELS + ("",), dtype=object)
        cols.append(names[trace.labels])
    for row in zip(*cols):
        out.write(",".join(row))
        out.write("\n")
    return out.getvalue()


def _fmt(values: np.ndarray, decimals: int) -> list[str]:
    fmt = f"{{:.{decimals}f}}".format
    return [fmt(v) for v in values.tolist()]


# ---------------------------------------------------------------- HAPT layout

@dataclass(frozen=True)
class HaptSegment:
    experiment: int
    user: int
    activity: int
    start: int  # row index, inclusive
    end: int  # row index, exclusive


def read_hapt_labels(root: str | Path) -> list[HaptSegment]:
    """The labelled segments of every recording in a HAPT-layout folder (0-based, end exclusive)."""
    path = Path(root) / "RawData" / "labels.txt"
    if not path.is_file():
        raise DatasetError(f"{Path(root)}: not a HAPT folder (no RawData/labels.txt); "
                           "pass --hapt DIR or set SITSENSE_HAPT_DIR")
    segs = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            exp, user, act, start, end = (int(x) for x in line.split())
        except ValueError:
            raise DatasetError(f"{path}: line {n}: expected 'experiment user activity start end'") from None
        if act not in HAPT_LABELS or start > end or start < 1:
            raise DatasetError(f"{path}: line {n}: activity must be 1-12 and 1 <= start <= end")
        segs.append(HaptSegment(exp, user, act, start - 1, end))
    return segs


def hapt_recordings(root: str | Path, users: set[int] | None = None) -> list[tuple[int, int, Path]]:
    """(experiment, user, path) of every accelerometer file, optionally for some users only."""
    raw = Path(root) / "RawData"
    if not raw.is_dir():
        raise DatasetError(f"{Path(root)}: not a HAPT folder (no RawData/); pass --hapt DIR or set "
                           "SITSENSE_HAPT_DIR")
    out = []
    for p in sorted(raw.glob("acc_exp*_user*.txt")):
        m = re.match(r"acc_exp(\d+)_user(\d+)\.txt$", p.name)
        if m:
            exp, user = int(m.group(1)), int(m.group(2))
            if users is None or user in users:
                out.append((exp, user, p))
    return out


def read_hapt(root: str | Path, users: set[int] | None = None) -> list[Trace]:
    """Every HAPT recording (optionally of some users) as labelled traces at 50 Hz."""
    segs = read_hapt_labels(root)
    by_exp: dict[int, list[HaptSegment]] = {}
    for s in segs:
        by_exp.setdefault(s.experiment, []).append(s)
    traces = []
    for exp, user, path in hapt_recordings(root, users):
        try:
            acc = np.loadtxt(path, dtype=np.float64, ndmin=2)
        except ValueError as exc:
            raise DatasetError(f"{path}: not three numbers per line ({exc})") from None
        if acc.shape[1] != 3:
            raise DatasetError(f"{path}: expected 3 columns (ax ay az), found {acc.shape[1]}")
        n = acc.shape[0]
        labels = np.full(n, NO_LABEL, dtype=np.int8)
        activity = np.zeros(n, dtype=np.int8)
        for s in by_exp.get(exp, []):
            labels[s.start:min(s.end, n)] = LABEL_CODE[HAPT_LABELS[s.activity]]
            activity[s.start:min(s.end, n)] = s.activity
        t = np.arange(n) / HAPT_SAMPLE_RATE_HZ
        meta = {"sample_rate_hz": "50", "source": "HAPT", "experiment": str(exp), "user": str(user)}
        traces.append(Trace(t, acc, labels, meta, str(path), activity))
    if not traces:
        raise DatasetError(f"{Path(root)}: no recordings found" + (f" for users {sorted(users)}" if users else ""))
    return traces


def parse_users(text: str) -> set[int]:
    """'1-24' or '1,3,5-7' -> a set of user numbers."""
    users: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise DatasetError(f"--users {text!r}: expected numbers and ranges like '1-24' or '1,3,5-7'")
        a = int(m.group(1))
        b = int(m.group(2) or a)
        users.update(range(a, b + 1))
    return users
