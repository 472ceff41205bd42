"""Recognising the dynamic releases (leg swings, walking lunges) from the belt accelerometer.

Pure numpy over windows of ``(n, 3)`` acceleration in g. What the pelvis shows while upright:
- walking: a strong vertical bounce at the step rate (1.5-2.3 Hz);
- leg swings: the wearer stands on one leg and the pelvis rocks fore and aft at the swing rate
  (about 0.6-1.5 Hz) while the vertical stays quiet;
- walking lunges: a slow, deep vertical cycle (one lunge every 1.6-5 s) with a forward lean.
The rules below read those three signatures from autocorrelation peaks. Reliability is measured
on synthetic signals (``sitsense.exercise_synth``) and on real walking/standing windows
(``bench/recognition.py``, figures in docs/wear/daily-use.md). Without real recordings of the exercises it is
a prototype, not proof.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .events import ExerciseRecognised

LABELS = ("still", "walking", "leg_swings", "lunges", "other")
EXERCISE_LABELS = {"leg_swings": "leg_swings", "lunges": "walking_lunges"}  # label -> catalogue id
WINDOW_S = 10.0
MAX_TILT_DEG = 40.0  # further than this from the upright reference is not "upright"


@dataclass(frozen=True)
class WindowFeatures:
    """What the rules read from one window (amplitudes in g, periods in seconds)."""

    tilt_deg: float
    total_std_g: float
    vert_std_g: float
    horiz_std_g: float
    vert_period_s: float
    vert_peak: float
    vert_step_peak: float  # autocorrelation peak at walking step periods (0.35-0.8 s)
    horiz_period_s: float
    horiz_peak: float


def _autocorr(x: np.ndarray) -> np.ndarray:
    x = x - x.mean()
    n = len(x)
    f = np.fft.rfft(x, 2 * n)
    ac = np.fft.irfft(f * np.conj(f))[:n]
    if ac[0] <= 0:
        return np.zeros(n)
    return ac / ac[0] * n / np.maximum(n - np.arange(n), 1)  # unbiased: long lags are not shrunk


def _best_peak(ac: np.ndarray, fs: float, lo_s: float, hi_s: float) -> tuple[float, float]:
    """(period s, height) of the highest local maximum of ``ac`` between lo_s and hi_s."""
    lo, hi = max(1, int(lo_s * fs)), min(len(ac) - 2, int(hi_s * fs))
    if hi <= lo:
        return float("nan"), 0.0
    seg = ac[lo - 1:hi + 2]
    is_peak = (seg[1:-1] >= seg[:-2]) & (seg[1:-1] >= seg[2:])
    idx = np.flatnonzero(is_peak)
    if not len(idx):
        return float("nan"), 0.0
    heights = seg[1:-1][idx]
    # the first peak nearly as high as the best: the fundamental, not one of its multiples
    best = idx[np.flatnonzero(heights >= 0.85 * heights.max())[0]] if heights.max() > 0 else idx[0]
    return (best + lo) / fs, float(seg[1:-1][best])


def _smooth(x: np.ndarray, n: int) -> np.ndarray:
    if n <= 1:
        return x
    k = np.ones(n) / n
    return np.convolve(x, k, mode="same")


def features(accel_g: np.ndarray, sample_rate_hz: float, upright_g: np.ndarray | None = None) -> WindowFeatures:
    """Features of one window; ``upright_g`` is the calibrated standing gravity vector, if known."""
    a = np.asarray(accel_g, dtype=float)
    fs = float(sample_rate_hz)
    g = a.mean(axis=0)
    up = g / (np.linalg.norm(g) or 1.0)
    if upright_g is not None:
        ref = np.asarray(upright_g, float)
        ref = ref / (np.linalg.norm(ref) or 1.0)
        tilt = float(np.degrees(np.arccos(np.clip(up @ ref, -1.0, 1.0))))
    else:
        tilt = 0.0
    d = a - g
    v = d @ up
    h = d - np.outer(v, up)
    # the main horizontal direction of movement (fore-aft for every exercise here)
    _, _, vt = np.linalg.svd(h - h.mean(axis=0), full_matrices=False)
    h1 = h @ vt[0]
    smooth_n = max(1, int(round(fs * 0.12)))
    v_s, h_s = _smooth(v, smooth_n), _smooth(h1, smooth_n)
    ac_v, ac_h = _autocorr(v_s), _autocorr(h_s)
    max_lag_s = min(5.0, len(a) / fs / 2)
    vp, vpk = _best_peak(ac_v, fs, 0.3, max_lag_s)
    _, vstep = _best_peak(ac_v, fs, 0.35, 0.8)
    hp, hpk = _best_peak(ac_h, fs, 0.3, max_lag_s)
    return WindowFeatures(tilt, float(np.sqrt((d ** 2).sum(axis=1).mean())), float(v.std()), float(h1.std()),
                          vp, vpk, vstep, hp, hpk)


def classify(f: WindowFeatures) -> str:
    """One of LABELS for a window's features."""
    if f.tilt_deg > MAX_TILT_DEG:
        return "other"
    if f.total_std_g < 0.02:
        return "still"
    if f.vert_std_g >= 0.06 and f.vert_step_peak >= 0.3:
        return "walking"
    if (0.6 <= f.horiz_period_s <= 1.7 and f.horiz_peak >= 0.75 and f.horiz_std_g >= 0.02
            and f.vert_std_g < 0.7 * f.horiz_std_g):
        return "leg_swings"
    if 1.6 <= f.vert_period_s <= 5.0 and f.vert_peak >= 0.7 and f.vert_std_g >= 0.04 \
            and f.vert_step_peak < 0.3:
        return "lunges"
    return "other"


def recognise(accel_g: np.ndarray, sample_rate_hz: float, upright_g: np.ndarray | None = None) -> str:
    """The label of one window of acceleration (about WINDOW_S long)."""
    return classify(features(accel_g, sample_rate_hz, upright_g))


def recognise_stream(t_s: np.ndarray, accel_g: np.ndarray, sample_rate_hz: float, *,
                     window_s: float = WINDOW_S, hop_s: float = WINDOW_S / 2,
                     upright_g: np.ndarray | None = None) -> list[tuple[float, str]]:
    """Labels of overlapping windows over a recording: (window end t, label)."""
    n, hop = int(round(window_s * sample_rate_hz)), int(round(hop_s * sample_rate_hz))
    out = []
    for i in range(0, len(t_s) - n + 1, hop):
        out.append((float(t_s[i + n - 1]), recognise(accel_g[i:i + n], sample_rate_hz, upright_g)))
    return out


def seen_exercises(labels: list[tuple[float, str]], hop_s: float = WINDOW_S / 2,
                   min_windows: int = 2) -> list[ExerciseRecognised]:
    """Runs of at least ``min_windows`` consecutive windows with the same exercise label."""
    out: list[ExerciseRecognised] = []
    run: list[tuple[float, str]] = []
    for item in labels + [(float("inf"), "")]:
        if run and item[1] != run[-1][1]:
            label = run[-1][1]
            if label in EXERCISE_LABELS and len(run) >= min_windows:
                start = run[0][0] - WINDOW_S
                out.append(ExerciseRecognised(run[-1][0], EXERCISE_LABELS[label], start, run[-1][0] - start))
            run = []
        run.append(item)
    return out
