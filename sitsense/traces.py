"""Trace files (``# sitsense-trace v1`` CSV, plain or gzip) and the HAPT recording layout.

A trace is timestamps in seconds, acceleration in g and an optional label per sample. Reading
and writing stream in chunks (``trace_reader``, ``trace_writer``); ``read_trace`` and
``write_trace`` are the whole-trace shortcuts for short recordings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from .errors import DatasetError

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
        return metadata_sample_rate_hz(self.metadata, lambda: (len(self), self.duration_s))

    @property
    def duration_s(self) -> float:
        return float(self.t_s[-1] - self.t_s[0]) if len(self) else 0.0

    @property
    def start_time(self) -> datetime | None:
        return metadata_start_time(self.metadata)

    def label_names(self) -> np.ndarray:
        """Labels as strings ('' where absent)."""
        if self.labels is None:
            return np.full(len(self), "", dtype=object)
        names = np.array(LABELS + ("",), dtype=object)
        return names[self.labels]


# ---------------------------------------------------------------- reading

def read_trace(path: str | Path) -> Trace:
    """Read a ``.csv`` or ``.csv.gz`` trace whole; raise TraceError naming file, line and problem.

    For traces of any length use ``sitsense.trace_reader.TraceReader``, which streams them in chunks.
    """
    from .trace_reader import TraceReader

    return TraceReader(path).read()


def parse_trace(raw: bytes, source: str = "<trace>") -> Trace:
    """Parse the bytes of a trace file."""
    from .trace_reader import TraceReader

    return TraceReader.from_bytes(raw, source).read()


def metadata_start_time(metadata: Mapping[str, str]) -> datetime | None:
    """A trace's ``start_time`` from its metadata (checked when read), or None without one."""
    text = metadata.get("start_time")
    return datetime.fromisoformat(text) if text else None


def metadata_sample_rate_hz(metadata: Mapping[str, str], span: Callable[[], tuple[int, float]]) -> float:
    """A trace's sample rate: its metadata's, else measured from ``span()`` (samples, seconds from the
    first to the last; asked only then), else HAPT's 50 Hz."""
    if "sample_rate_hz" in metadata:
        return float(metadata["sample_rate_hz"])
    samples, duration_s = span()
    if samples > 1:
        return float((samples - 1) / duration_s)
    return HAPT_SAMPLE_RATE_HZ


def parse_start_time(text: str) -> datetime | None:
    """A trace's ``start_time``: ISO 8601 with a UTC offset, else None."""
    try:
        st = datetime.fromisoformat(text)
    except ValueError:
        return None
    return st if st.tzinfo is not None else None


# ---------------------------------------------------------------- writing

def write_trace(path: str | Path, trace: Trace, *, decimals: int = 4) -> None:
    """Write a trace as ``.csv`` or ``.csv.gz`` (by suffix), atomically (temp file, then rename)."""
    from .trace_writer import TraceFileWriter

    meta = dict(trace.metadata)
    meta.setdefault("sample_rate_hz", f"{trace.sample_rate_hz:g}")
    with TraceFileWriter(path, meta, labelled=trace.labels is not None, decimals=decimals) as writer:
        writer.write(trace.t_s, trace.accel_g, trace.labels)


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
