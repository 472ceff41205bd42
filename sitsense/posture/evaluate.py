"""The evaluation protocol of issue 3, identical for every classifier.

Per recording: the upright reference is the mean of the first 5 s of its first standing
segment (none if it has no standing); the classifier runs causally over the whole recording in
replay-sized blocks. Fixed 2.56 s windows (hop 1.28 s) that lie wholly inside one labelled
static or walking segment are scored with the posture output at the last step no later than
``LOOKAHEAD_S`` past the window's end. A labelled change between sitting and standing (through
a transition label or not) is found when the output changes to the new posture between the end
of the old segment and ``FOUND_WITHIN_S`` after the start of the new one; its latency is counted
from that start (the labelled transition's end). ``not_worn`` outputs that arrive with
``since_t`` overwrite the outputs since then, as the tracker does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from ..traces import LABEL_CODE, LABELS, Trace
from .base import PostureClassifier

WINDOW_S = 2.56
HOP_S = 1.28
LOOKAHEAD_S = 2.0
FOUND_WITHIN_S = 5.0
REFERENCE_S = 5.0
BRIDGE_S = 10.0  # transition labels and unlabelled gaps up to this long join two postures
SCORED = ("sitting", "standing", "walking", "lying", "not_worn")
OUTPUTS = ("sitting", "standing", "walking", "lying", "not_worn", "unknown")
SEDENTARY = ("sitting", "lying")


@dataclass
class Outputs:
    """A classifier's step outputs over one recording (after backdating)."""

    t_s: np.ndarray
    posture: np.ndarray  # object array of names
    p: np.ndarray

    def at(self, t_s: np.ndarray) -> np.ndarray:
        """The posture reported at the last step no later than each time ('unknown' before the first)."""
        i = np.searchsorted(self.t_s, t_s, side="right") - 1
        names = np.append(self.posture, "unknown")
        return names[np.where(i >= 0, i, len(self.posture))]


@dataclass
class Tally:
    """Counts that add up over recordings and folds; ``metrics()`` turns them into the report."""

    confusion: dict[str, dict[str, int]] = field(
        default_factory=lambda: {s: {o: 0 for o in OUTPUTS} for s in SCORED})
    transitions: list[tuple[str, bool, float]] = field(default_factory=list)  # (kind, found, latency_s)
    sitting_true_s: float = 0.0
    sitting_pred_s: float = 0.0

    def add(self, other: "Tally") -> None:
        for s in SCORED:
            for o in OUTPUTS:
                self.confusion[s][o] += other.confusion[s][o]
        self.transitions.extend(other.transitions)
        self.sitting_true_s += other.sitting_true_s
        self.sitting_pred_s += other.sitting_pred_s

    def metrics(self, *, sitting_time: bool = False) -> dict:
        c = self.confusion
        present = [s for s in SCORED if sum(c[s].values()) > 0]
        recall = {s: _ratio(c[s][s], sum(c[s].values())) for s in present}
        ss = c["sitting"]["sitting"] + c["standing"]["standing"]
        ss_n = sum(c["sitting"].values()) + sum(c["standing"].values())
        sed_n = sum(sum(c[s].values()) for s in SEDENTARY)
        sed_ok = sum(c[s][o] for s in SEDENTARY for o in SEDENTARY)
        act = [s for s in present if s not in SEDENTARY]
        act_n = sum(sum(c[s].values()) for s in act)
        act_ok = sum(c[s][o] for s in act for o in OUTPUTS if o not in SEDENTARY)
        bal = [x for x in (_ratio(sed_ok, sed_n), _ratio(act_ok, act_n)) if x is not None]
        lat = np.array([lt for kind, found, lt in self.transitions if found])
        out = {
            "sit_stand_accuracy": _ratio(ss, ss_n),
            "sedentary_balanced_accuracy": float(np.mean(bal)) if bal else None,
            "per_class_recall": recall,
            "confusion": {s: dict(c[s]) for s in present},
            "sit_to_stand_sensitivity": self._sensitivity("sit_to_stand"),
            "stand_to_sit_sensitivity": self._sensitivity("stand_to_sit"),
            "transition_latency_s": {"median": float(np.median(lat)) if len(lat) else None,
                                     "p90": float(np.percentile(lat, 90)) if len(lat) else None},
            "windows": int(sum(sum(c[s].values()) for s in present)),
        }
        if sitting_time:
            out["sitting_time_error"] = (_ratio(self.sitting_pred_s - self.sitting_true_s, self.sitting_true_s))
        return out

    def _sensitivity(self, kind: str) -> float | None:
        hits = [found for k, found, _ in self.transitions if k == kind]
        return _ratio(sum(hits), len(hits))


def _ratio(a: float, b: float) -> float | None:
    return float(a) / b if b else None


# ---------------------------------------------------------------- running a classifier

def upright_reference(trace: Trace, seconds: float = REFERENCE_S) -> np.ndarray | None:
    """Mean acceleration over the first ``seconds`` of the trace's first standing segment."""
    if trace.labels is None:
        return None
    idx = np.flatnonzero(trace.labels == LABEL_CODE["standing"])
    if len(idx) == 0:
        return None
    start = idx[0]
    stop = start + 1
    while stop < len(trace.labels) and trace.labels[stop] == LABEL_CODE["standing"] \
            and trace.t_s[stop] - trace.t_s[start] < seconds:
        stop += 1
    return trace.accel_g[start:stop].mean(axis=0)


def run_classifier(classifier: PostureClassifier, trace: Trace, *, block_s: float = 60.0,
                   reference: np.ndarray | None = None,
                   progress: Callable[[float], None] | None = None) -> Outputs:
    """Stream a trace through a classifier in blocks; apply ``since_t`` backdating.

    ``progress(done_s)`` after every block: seconds of the recording classified so far.
    """
    t = trace.t_s
    edges = np.searchsorted(t, np.arange(t[0], t[-1] + block_s, block_s), side="left")
    edges = np.append(edges[edges < len(t)], len(t))
    blocks = ((t[lo:hi], trace.accel_g[lo:hi]) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo)
    return run_classifier_blocks(classifier, blocks, reference=reference, progress=progress)


def run_classifier_blocks(classifier: PostureClassifier, blocks: Iterable[tuple[np.ndarray, np.ndarray]], *,
                          reference: np.ndarray | None = None,
                          progress: Callable[[float], None] | None = None) -> Outputs:
    """``run_classifier`` over blocks ``(t_s, accel_g)`` arriving one by one (a trace read in chunks).

    The outputs are kept compactly (17 bytes a step), so a week of 1 s steps takes 10 MB.
    """
    if reference is not None:
        classifier.set_reference(reference)
    log = _OutputLog()
    t0 = None
    for t, acc in blocks:
        t0 = t[0] if t0 is None else t0
        log.add(classifier.process(t, acc))
        classifier.pop_events()
        if progress is not None:
            progress(float(t[-1] - t0))
    log.add(getattr(classifier, "flush", lambda: [])())
    classifier.pop_events()
    return log.outputs()


class _OutputLog:
    """Step outputs as growing arrays; a ``since_t`` estimate rewrites the steps after that time."""

    def __init__(self):
        self.t: np.ndarray = np.zeros(1024)
        self.code: np.ndarray = np.zeros(1024, dtype=np.int8)
        self.p: np.ndarray = np.zeros(1024)
        self.n = 0

    def add(self, estimates) -> None:
        for est in estimates:
            if est.since_t is not None:  # the steps since then become this posture
                k = int(np.searchsorted(self.t[:self.n], est.since_t, side="right"))
                self.code[k:self.n] = _OUTPUT_CODE[est.posture]
            if self.n == len(self.t):
                self.t, self.code, self.p = (np.resize(a, 2 * len(a)) for a in (self.t, self.code, self.p))
            self.t[self.n], self.code[self.n], self.p[self.n] = est.t, _OUTPUT_CODE[est.posture], est.p
            self.n += 1

    def outputs(self) -> Outputs:
        names = np.array(OUTPUTS, dtype=object)
        return Outputs(self.t[:self.n].copy(), names[self.code[:self.n]], self.p[:self.n].copy())


_OUTPUT_CODE = {name: i for i, name in enumerate(OUTPUTS)}


# ---------------------------------------------------------------- scoring

def segments(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of equal label codes as (code, start, stop) with stop exclusive."""
    if len(labels) == 0:
        return []
    cut = np.flatnonzero(np.diff(labels.astype(np.int16)) != 0) + 1
    starts = np.r_[0, cut]
    stops = np.r_[cut, len(labels)]
    return [(int(labels[a]), int(a), int(b)) for a, b in zip(starts, stops)]


def score(trace: Trace, outputs: Outputs, step_s: float = 1.0) -> Tally:
    """Score one labelled recording's outputs by the protocol."""
    if trace.labels is None:
        return Tally()
    t = trace.t_s
    runs = [(c, float(t[a]), float(t[b - 1])) for c, a, b in segments(trace.labels)]
    sitting = int(np.count_nonzero(trace.labels == LABEL_CODE["sitting"]))
    return score_runs(runs, outputs, 1.0 / trace.sample_rate_hz, sitting, step_s)


def score_runs(runs: list[tuple[int, float, float]], outputs: Outputs, dt: float, sitting_samples: int,
               step_s: float = 1.0) -> Tally:
    """``score`` from the recording's label runs (code, first sample's t, last sample's t), its
    sample period and its count of sitting samples: all a trace read in chunks has to keep."""
    tally = Tally()
    segs = [(LABELS[c], a, b + dt) for c, a, b in runs if c >= 0]
    for name, s0, s1 in segs:
        if name not in SCORED:
            continue
        n = int(np.floor((s1 - s0 - WINDOW_S) / HOP_S + 1e-9)) + 1
        if n <= 0:
            continue
        ends = s0 + WINDOW_S + HOP_S * np.arange(n)
        pred = outputs.at(ends + LOOKAHEAD_S)
        row = tally.confusion[name]
        for o, k in zip(*np.unique(pred, return_counts=True)):
            row[str(o)] = row.get(str(o), 0) + int(k)
    postures = [(n, a, b) for n, a, b in segs if n in SCORED]
    for (old, _a0, old_end), (new, new_start, _b1) in zip(postures[:-1], postures[1:]):
        kind = {("sitting", "standing"): "sit_to_stand", ("standing", "sitting"): "stand_to_sit"}.get((old, new))
        if kind is None or new_start - old_end > BRIDGE_S:
            continue
        tally.transitions.append((kind, *_found(outputs, new, old_end, new_start)))
    tally.sitting_true_s = float(sitting_samples) * dt
    tally.sitting_pred_s = float(np.count_nonzero(outputs.posture == "sitting")) * step_s
    return tally


def _found(outputs: Outputs, new: str, old_end: float, new_start: float) -> tuple[bool, float]:
    i0 = np.searchsorted(outputs.t_s, old_end, side="right")
    i1 = np.searchsorted(outputs.t_s, new_start + FOUND_WITHIN_S, side="right")
    prev = outputs.posture[i0 - 1] if i0 > 0 else "unknown"
    for i in range(i0, i1):
        cur = outputs.posture[i]
        if cur == new and prev != new:
            return True, float(outputs.t_s[i] - new_start)
        prev = cur
    return False, float("nan")


# ---------------------------------------------------------------- whole data sets

def decimate(trace: Trace, rate_hz: float) -> Trace:
    """The trace at a lower sample rate: boxcar-averaged, then sampled on the new grid."""
    src = trace.sample_rate_hz
    if rate_hz >= src - 1e-9:
        return trace
    width = max(1, int(round(src / rate_hz)))
    kernel = np.ones(width) / width
    smooth = np.column_stack([np.convolve(trace.accel_g[:, i], kernel, mode="full")[:len(trace)]
                              for i in range(3)])
    smooth[:width - 1] = trace.accel_g[:width - 1]
    t_new = np.arange(trace.t_s[0], trace.t_s[-1] + 1e-9, 1.0 / rate_hz)
    idx = np.minimum(np.searchsorted(trace.t_s, t_new - 1e-9), len(trace) - 1)
    meta = dict(trace.metadata, sample_rate_hz=f"{rate_hz:g}")
    return Trace(trace.t_s[idx], smooth[idx], None if trace.labels is None else trace.labels[idx], meta,
                 trace.source, None if trace.activity is None else trace.activity[idx])


def evaluate_traces(traces: Iterable[Trace], make: Callable[[float], PostureClassifier], *,
                    rate_hz: float | None = None, block_s: float = 60.0,
                    progress: Callable[[float, float], None] | None = None) -> Tally:
    """Run the protocol over recordings; ``make(sample_rate_hz)`` builds a fresh classifier for each.

    ``progress(done_s, total_s)`` after every block of every recording, in seconds of recording
    (one run classifies every recording at the same rate, so a second costs the same throughout).
    """
    total = Tally()
    if progress is not None:
        traces = list(traces)
    total_s = sum(tr.duration_s for tr in traces) if progress is not None else 0.0
    done_s = 0.0

    def on_block(s: float) -> None:
        assert progress is not None
        progress(done_s + s, total_s)

    for recording in traces:
        trace = decimate(recording, rate_hz) if rate_hz else recording
        clf = make(trace.sample_rate_hz)
        outputs = run_classifier(clf, trace, block_s=block_s, reference=upright_reference(trace),
                                 progress=on_block if progress is not None else None)
        total.add(score(trace, outputs, getattr(clf, "step_s", 1.0)))
        if progress is not None:
            done_s += recording.duration_s
            progress(done_s, total_s)
    return total


def make_factory(model_path: str | None = None, *, provisional: bool = False
                 ) -> Callable[[float], PostureClassifier]:
    """A builder of fresh classifiers per recording: the shipped (or given) model, or the provisional one."""
    if provisional:
        from .provisional import TiltClassifier

        return lambda rate_hz: TiltClassifier()
    from .classifier import StreamingClassifier
    from .model import PostureModel

    model = PostureModel.load(model_path)
    return lambda rate_hz: StreamingClassifier(model, sample_rate_hz=rate_hz)


def format_metrics(m: dict) -> str:
    """The metrics as a few aligned lines for people."""
    def f(v):
        return "n/a" if v is None else f"{v:.4f}"
    lines = [f"{k:30s} {f(m[k])}" for k in ("sit_stand_accuracy", "sedentary_balanced_accuracy",
                                            "sit_to_stand_sensitivity", "stand_to_sit_sensitivity")]
    lat = m["transition_latency_s"]
    lines.append(f"{'transition_latency_s':30s} median {f(lat['median'])}  p90 {f(lat['p90'])}")
    if "sitting_time_error" in m:
        lines.append(f"{'sitting_time_error':30s} {f(m['sitting_time_error'])}")
    lines.append(f"{'windows':30s} {m['windows']}")
    lines.append("per-class recall: " + ", ".join(f"{k} {v:.4f}" for k, v in m["per_class_recall"].items()))
    lines.append("confusion (rows: labelled, columns: reported):")
    for s, row in m["confusion"].items():
        lines.append(f"  {s:9s} " + ", ".join(f"{o} {n}" for o, n in row.items() if n))
    return "\n".join(lines)
