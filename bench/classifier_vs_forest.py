"""Our posture network against a scikit-learn random forest on the same HAPT feature rows, leave-users-out.

Users are split into folds of consecutive ids as in bench/crossval.py. For each fold both models
are trained on the rows ``sitsense train`` fits on (``sitsense.posture.training.training_set``:
one row of features per labelled 1 s step, at 50 and 25 Hz) of the other users, and score the
held-out users' rows, built the same way with the training fold's nominal forward axis. This
compares the bare models row by row, WITHOUT the HMM smoother of the streaming classifier; a row
counts as right when the most probable of the four postures is its label (transition rows are
trained on but not scored). The streaming classifier (model plus smoother) is also scored on the
held-out recordings by the evaluation protocol, for reference. Both models run on one thread
(the forest with n_jobs=1, numpy's BLAS limited to one thread through threadpoolctl, which comes
with scikit-learn); times are process CPU seconds, the median over the folds. scikit-learn is a
dev extra, not a dependency.

    PYTHONPATH=. python bench/classifier_vs_forest.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sitsense.posture.classifier import StreamingClassifier  # noqa: E402
from sitsense.posture.evaluate import Tally, decimate, evaluate_traces  # noqa: E402
from sitsense.posture.model import POSTURE_STATES, STATES, PostureModel, fit  # noqa: E402
from sitsense.posture.training import recording_frame, trace_rows, training_set  # noqa: E402
from sitsense.traces import Trace, parse_users, read_hapt  # noqa: E402

RATES_HZ = (50.0, 25.0)  # as training_set: every recording at both rates
SIT, STAND = STATES.index("sitting"), STATES.index("standing")
N_POSTURES = len(POSTURE_STATES)
PER_ROWS = 10_000
MIN_TIMING_CPU_S = 0.2  # repeat each prediction until it has used this much CPU
NO_SMOOTHING = "per-row, bare models, no HMM smoothing"


def default_hapt_dir() -> Path:
    """SITSENSE_HAPT_DIR, else ../shared/data/hapt beside the repository."""
    env = os.environ.get("SITSENSE_HAPT_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data" / "hapt"


def require_sklearn():
    """The RandomForestClassifier class; ImportError with the remedy if scikit-learn is missing."""
    try:
        from sklearn.ensemble import RandomForestClassifier
    except ImportError as exc:
        raise ImportError("classifier_vs_forest needs scikit-learn (a dev extra): "
                          f"pip install scikit-learn ({exc})") from None
    return RandomForestClassifier


def one_thread():
    """A context that limits numpy's BLAS (and OpenMP) to one thread, like the forest's n_jobs=1."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def require_hapt(root: str | Path) -> Path:
    """The HAPT folder; FileNotFoundError naming the path if it is not there."""
    p = Path(root)
    if not (p / "RawData" / "labels.txt").is_file():
        raise FileNotFoundError(f"HAPT recordings not found at {p} (no RawData/labels.txt); "
                                "pass --hapt DIR or set SITSENSE_HAPT_DIR")
    return p


def make_folds(users: list[int], fold_size: int) -> list[list[int]]:
    """Consecutive groups of ``fold_size`` users, as bench/crossval.py splits them."""
    return [users[k:k + fold_size] for k in range(0, len(users), fold_size)]


def cpu_s(fn: Callable[[], object]) -> tuple[object, float]:
    """The result of ``fn()`` and the process CPU seconds it took."""
    c0 = time.process_time()
    out = fn()
    return out, time.process_time() - c0


def cpu_s_per_rows(predict: Callable[[np.ndarray], object], x: np.ndarray, per_rows: int = PER_ROWS) -> float:
    """CPU seconds to predict ``per_rows`` rows, repeating over ``x`` until the time is measurable."""
    reps, used_s = 0, 0.0
    while used_s < MIN_TIMING_CPU_S or reps == 0:
        used_s += cpu_s(lambda: predict(x))[1]
        reps += 1
    return used_s / (reps * len(x)) * per_rows


def held_out_rows(traces: list[Trace], nominal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of recordings exactly as training_set builds them, with a given nominal forward axis."""
    xs, ys = [], []
    for trace in traces:
        up, heading = recording_frame(trace)
        for rate_hz in RATES_HZ:
            x, y = trace_rows(decimate(trace, rate_hz), up, heading, nominal)
            xs.append(x)
            ys.append(y)
    return np.vstack(xs), np.concatenate(ys)


def forest_proba(forest, x: np.ndarray) -> np.ndarray:
    """Forest class probabilities as (m, len(STATES)), zero for classes the fold did not contain."""
    out = np.zeros((len(x), len(STATES)))
    out[:, forest.classes_] = forest.predict_proba(x)
    return out


def posture_confusion(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """4x4 counts (labelled, predicted) over posture rows; prediction = best of the four postures."""
    keep = labels < N_POSTURES
    pred = np.argmax(scores[keep, :N_POSTURES], axis=1)
    conf = np.zeros((N_POSTURES, N_POSTURES), dtype=int)
    np.add.at(conf, (labels[keep], pred), 1)
    return conf


def accuracies(conf: np.ndarray) -> dict:
    """Sit/stand accuracy, accuracy over the four postures and per-posture recall from a confusion."""
    ss = conf[[SIT, STAND]]
    return {"sit_stand_accuracy": float(ss[0, SIT] + ss[1, STAND]) / max(int(ss.sum()), 1),
            "posture_accuracy": float(np.trace(conf)) / max(int(conf.sum()), 1),
            "recall": {s: float(conf[i, i]) / max(int(conf[i].sum()), 1) for i, s in enumerate(POSTURE_STATES)},
            "rows": int(conf.sum()), "sit_stand_rows": int(ss.sum())}


def npz_bytes(model: PostureModel) -> int:
    """Size of the model file as ``sitsense train`` saves it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.npz"
        model.save(path)
        return path.stat().st_size


def train_ours(x: np.ndarray, y: np.ndarray, nominal: np.ndarray, held: list[int]) -> PostureModel:
    """sitsense's fit as ``train`` runs it (same defaults, nominal forward axis set)."""
    model = fit(x, y, trained_on=f"classifier_vs_forest without users {held}")
    model.forward_axis = nominal
    return model


def run_fold(train_tr: list[Trace], test_tr: list[Trace], held: list[int], trees: int, seed: int,
             streaming: bool) -> dict:
    """Train both models on one fold's training users and score them on its held-out users."""
    forest_cls = require_sklearn()
    x, y, nominal = training_set(train_tr, rates_hz=RATES_HZ)
    xt, yt = held_out_rows(test_tr, nominal)
    ours, ours_train_s = cpu_s(lambda: train_ours(x, y, nominal, held))
    forest = forest_cls(n_estimators=trees, random_state=seed, n_jobs=1)
    _, forest_train_s = cpu_s(lambda: forest.fit(x, y))
    fold = {"held_out_users": held, "train_rows": len(y), "test_rows": len(yt),
            "sitsense": {"confusion": posture_confusion(ours.log_proba(xt), yt), "train_cpu_s": ours_train_s,
                         "predict_cpu_s_per_10k": cpu_s_per_rows(ours.log_proba, xt), "bytes": npz_bytes(ours)},
            "forest": {"confusion": posture_confusion(forest_proba(forest, xt), yt), "train_cpu_s": forest_train_s,
                       "predict_cpu_s_per_10k": cpu_s_per_rows(forest.predict_proba, xt),
                       "bytes": len(pickle.dumps(forest))}}
    if streaming:
        fold["streaming"] = evaluate_traces(test_tr, lambda hz: StreamingClassifier(ours, sample_rate_hz=hz))
    return fold


def pool(folds: list[dict], who: str) -> dict:
    """One model's figures over all folds: pooled accuracies, median per-fold times and sizes."""
    conf = sum(f[who]["confusion"] for f in folds)
    out = accuracies(conf)
    out["confusion"] = {s: dict(zip(POSTURE_STATES, map(int, row))) for s, row in zip(POSTURE_STATES, conf)}
    for key in ("train_cpu_s", "predict_cpu_s_per_10k", "bytes"):
        vals = [f[who][key] for f in folds]
        out[key] = float(np.median(vals))
        out[key + "_per_fold"] = vals
    out["bytes"] = int(round(out["bytes"]))
    return out


def crossval(root: str | Path, users: list[int], fold_size: int, trees: int, seed: int = 0,
             streaming: bool = True) -> dict:
    """Both models through leave-``fold_size``-users-out; pooled figures and per-fold details."""
    require_sklearn()
    traces = read_hapt(require_hapt(root), set(users))
    with one_thread():
        folds = run_folds(traces, users, fold_size, trees, seed, streaming)
    out = {"users": users, "fold_size": fold_size, "folds": len(folds), "trees": trees, "random_state": seed,
           "rates_hz": list(RATES_HZ), "scoring": NO_SMOOTHING, "threads": 1,
           "train_rows_per_fold": [f["train_rows"] for f in folds],
           "test_rows_per_fold": [f["test_rows"] for f in folds],
           "sitsense": pool(folds, "sitsense"), "forest": pool(folds, "forest")}
    if streaming:
        tally = Tally()
        for f in folds:
            tally.add(f["streaming"])
        m = tally.metrics()
        out["streaming"] = {k: m[k] for k in ("sit_stand_accuracy", "sedentary_balanced_accuracy",
                                              "per_class_recall", "windows")}
    return out


def run_folds(traces: list[Trace], users: list[int], fold_size: int, trees: int, seed: int,
              streaming: bool) -> list[dict]:
    """Every fold's results, holding out consecutive users in turn."""
    by_user: dict[int, list[Trace]] = {}
    for tr in traces:
        by_user.setdefault(int(tr.metadata["user"]), []).append(tr)
    folds = []
    for held in make_folds(users, fold_size):
        train_tr = [tr for u, trs in by_user.items() if u not in held for tr in trs]
        test_tr = [tr for u in held for tr in by_user.get(u, [])]
        if train_tr and test_tr:
            folds.append(run_fold(train_tr, test_tr, held, trees, seed, streaming))
    return folds


def human_bytes(n: int) -> str:
    """Bytes as kB or MB (decimal)."""
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def cost_text(m: dict) -> str:
    """Training time, prediction time and size of one model, for the table."""
    return (f"train {m['train_cpu_s']:.1f} s CPU/fold, predict {m['predict_cpu_s_per_10k']:.2g} s / 10k rows, "
            f"{human_bytes(m['bytes'])}")


def table_rows(r: dict) -> list[list[str]]:
    """Rows for bench/run_all.py: | benchmark | sitsense | baseline (same run) | target |."""
    what = (f"classifier vs random forest (same features, leave-{r['fold_size']}-users-out over "
            f"{len(r['users'])} HAPT users, {NO_SMOOTHING})")
    ours, forest = r["sitsense"], r["forest"]
    rows = [[f"{what}: sit/stand accuracy", f"{ours['sit_stand_accuracy']:.3f} ({cost_text(ours)})",
             f"random forest, {r['trees']} trees: {forest['sit_stand_accuracy']:.3f} ({cost_text(forest)})",
             "no target; comparison"],
            [f"{what}: accuracy over the 4 postures", f"{ours['posture_accuracy']:.3f}",
             f"random forest {forest['posture_accuracy']:.3f}", "no target; comparison"]]
    if "streaming" in r:
        rows.append([f"streaming classifier (model + HMM smoothing), same folds: sit/stand accuracy, "
                     f"evaluation protocol windows", f"{r['streaming']['sit_stand_accuracy']:.3f}",
                     f"bare model per row {ours['sit_stand_accuracy']:.3f}, random forest per row "
                     f"{forest['sit_stand_accuracy']:.3f}", "no target; comparison"])
    return rows


def measure(quick: bool = False, hapt: str | Path | None = None) -> dict:
    """For bench/run_all.py: both models' accuracy, time and size; ``rows`` for the markdown table."""
    require_sklearn()
    root = require_hapt(hapt or default_hapt_dir())
    users, trees = (list(range(1, 9)), 30) if quick else (list(range(1, 25)), 100)
    return run(root, users, 4, trees)


def run(root: str | Path, users: list[int], fold_size: int, trees: int, seed: int = 0,
        streaming: bool = True) -> dict:
    """crossval plus its total CPU and wall time and the table rows."""
    c0, w0 = time.process_time(), time.perf_counter()
    r = crossval(root, users, fold_size, trees, seed, streaming)
    r["total_cpu_s"] = round(time.process_time() - c0, 1)
    r["total_wall_s"] = round(time.perf_counter() - w0, 1)
    r["rows"] = table_rows(r)
    return r


def report(r: dict) -> str:
    """The figures as aligned lines for people."""
    ours, forest = r["sitsense"], r["forest"]
    lines = [f"leave-{r['fold_size']}-users-out over HAPT users {r['users'][0]}-{r['users'][-1]} "
             f"({r['folds']} folds, rows at {'/'.join(f'{h:g}' for h in r['rates_hz'])} Hz, "
             f"~{int(np.mean(r['train_rows_per_fold'])):,} training rows per fold); {r['scoring']}",
             f"{'':34s}{'sitsense':>14s}{'forest (' + str(r['trees']) + ')':>18s}"]
    for key, fmt in (("sit_stand_accuracy", "{:.4f}"), ("posture_accuracy", "{:.4f}"),
                     ("train_cpu_s", "{:.2f}"), ("predict_cpu_s_per_10k", "{:.4f}")):  # times: median fold
        lines.append(f"{key:34s}{fmt.format(ours[key]):>14s}{fmt.format(forest[key]):>18s}")
    lines.append(f"{'model bytes (npz / pickle)':34s}{ours['bytes']:>14,d}{forest['bytes']:>18,d}")
    for s in POSTURE_STATES:
        lines.append(f"{'recall ' + s:34s}{ours['recall'][s]:14.4f}{forest['recall'][s]:18.4f}")
    for name, m in (("sitsense", ours), ("forest", forest)):
        lines.append(f"confusion {name} (rows labelled, columns predicted {'/'.join(POSTURE_STATES)}):")
        lines += [f"  {s:9s} " + " ".join(f"{n:6d}" for n in row.values()) for s, row in m["confusion"].items()]
    if "streaming" in r:
        st = r["streaming"]
        lines.append(f"streaming classifier with smoothing (evaluation protocol, {st['windows']} windows): "
                     f"sit/stand accuracy {st['sit_stand_accuracy']:.4f}, sedentary balanced accuracy "
                     f"{st['sedentary_balanced_accuracy']:.4f}")
    if "total_cpu_s" in r:
        lines.append(f"total {r['total_cpu_s']} s CPU, {r['total_wall_s']} s wall")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hapt", default=str(default_hapt_dir()), help="HAPT folder (default: $SITSENSE_HAPT_DIR "
                    "or ../shared/data/hapt)")
    ap.add_argument("--users", default=None, help="users, e.g. 1-24 (default 1-24, --quick 1-8)")
    ap.add_argument("--fold-size", type=int, default=4)
    ap.add_argument("--trees", type=int, default=None, help="forest size (default 100, --quick 30)")
    ap.add_argument("--seed", type=int, default=0, help="random_state of the forest")
    ap.add_argument("--no-streaming", action="store_true", help="skip the streaming classifier's evaluation")
    ap.add_argument("--quick", action="store_true", help="users 1-8 and 30 trees: under a minute")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = ap.parse_args()
    users = sorted(parse_users(args.users or ("1-8" if args.quick else "1-24")))
    trees = args.trees or (30 if args.quick else 100)
    try:
        r = run(args.hapt, users, args.fold_size, trees, args.seed, streaming=not args.no_streaming)
    except (ImportError, FileNotFoundError) as exc:
        print(f"classifier_vs_forest: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(r, indent=2) if args.json else report(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
