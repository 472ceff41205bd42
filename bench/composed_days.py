"""Composed office days of held-out wearers through the whole Service: sitting time, alerts, false breaks.

For every fold of HAPT users, a model is trained without them; each of them gets a composed
office day (``sitsense.compose``: their own real recordings stitched into hours) that runs
through the whole Service as ``sitsense simulate`` does, calibrated on its first 5 s of standing
as the README asks of a wearer (and as the evaluation protocol does). Per day: the protocol's sit/stand and
sedentary figures, the sitting-time error (the Service's summary against the labels), the
alerts against those the labels call for (the labels run through the same Service; a day is
wrong if an alert is missed or given more than 5 minutes from any the labels call for), and false
breaks (a break with no labelled standing or walking under it). Variants:

- ``one``: the day as ``sitsense compose`` makes it (one recording, one phone mount);
- ``shifts``: the same with posture shifts (``compose --posture-shifts``: slumped, upright and
  perched sitting, changed by a turn of the pelvis without standing up);
- ``mixed``: crops from all the user's recordings (each has its own mount: every crop boundary
  may be a silent remount, which no real wearer does every 20 s);
- ``table``: the ``one`` day with the sensor put on a table for 60 minutes (the synthetic
  generator's table), counting alerts during that hour and the time reported as not worn;
- ``walks``: another day (``WALKS_DAY``, one mount) that mostly goes straight from sitting to a
  walk and from the walk into a chair, with no standing between (desk to meeting room and back):
  stand-up, walk and sit-down are then one movement, which ``DAY`` has only at its ends.

``--seed-offset`` draws other days (the default days use seed = user number).

    PYTHONPATH=. python bench/composed_days.py --hapt ../shared/data/hapt [--users 1-24] [--variants one,shifts,table]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.service_runs import LabelClassifier, alert_check, false_breaks, labelled_s, run_service  # noqa: E402
from sitsense.compose import compose  # noqa: E402
from sitsense.errors import SitsenseError  # noqa: E402
from sitsense.events import Alert, BreakTaken  # noqa: E402
from sitsense.plan import parse_plan  # noqa: E402
from sitsense.posture.classifier import StreamingClassifier  # noqa: E402
from sitsense.posture.evaluate import Tally, score, upright_reference  # noqa: E402
from sitsense.posture.training import train  # noqa: E402
from sitsense.synth import synthesize  # noqa: E402
from sitsense.traces import LABEL_CODE, Trace, parse_users, read_hapt  # noqa: E402

DAY = ("stand 2m, sit 40m, stand 1m, walk 4m, sit 25m, stand 3m, walk 6m, sit 50m, walk 3m, "
       "stand 2m, sit 20m, lie 15m, sit 10m, walk 5m, stand 4m, sit 35m, walk 5m")
TABLE_AFTER_S = 81 * 60.0  # the sensor goes on the table after the 6-minute walk, 81 minutes into the day
TABLE_S = 3600.0
WALKS_DAY = ("stand 2m, sit 40m, walk 2m, sit 30m, walk 2m, sit 45m, walk 3m, stand 2m, sit 25m, walk 2m, "
             "sit 35m, stand 2m, walk 5m")
VARIANTS = ("one", "shifts", "mixed", "table", "walks")


def compose_day(root: str, user: int, variant: str, seed_offset: int = 0, days_dir: Path | None = None) -> Trace:
    """The composed day of one user for a variant (``table`` is the ``one`` day; see ``with_table``).

    With ``days_dir``, each day is kept there and a day saved there is read back instead of composed
    (an older checkout of sitsense, given this bench, then runs on exactly the samples today's
    ``compose`` made)."""
    saved = days_dir / f"{user}_{variant}_{seed_offset}.npz" if days_dir is not None else None
    if saved is not None and saved.exists():
        with np.load(saved) as z:
            return Trace(z["t_s"], z["accel_g"], z["labels"], json.loads(str(z["metadata"])), str(z["source"]))
    day = compose(root, user, parse_plan(WALKS_DAY if variant == "walks" else DAY), seed=user + seed_offset,
                  mix_recordings=variant == "mixed", posture_shifts=variant == "shifts")
    if saved is not None:
        saved.parent.mkdir(parents=True, exist_ok=True)
        np.savez(saved, t_s=day.t_s, accel_g=day.accel_g, labels=day.labels, metadata=json.dumps(day.metadata),
                 source=day.source)
    return day


def with_table(day: Trace, seed: int) -> Trace:
    """The day with an hour of the sensor lying on a table spliced in at ``TABLE_AFTER_S``."""
    table = synthesize(parse_plan(f"off {TABLE_S:g}s"), sample_rate_hz=day.sample_rate_hz, seed=seed)
    k = int(np.searchsorted(day.t_s, TABLE_AFTER_S))
    acc = np.vstack([day.accel_g[:k], table.accel_g, day.accel_g[k:]])
    labels = np.concatenate([day.labels[:k], np.full(len(table), LABEL_CODE["not_worn"], np.int8), day.labels[k:]])
    t = np.arange(len(acc)) / day.sample_rate_hz
    return Trace(t, acc, labels, dict(day.metadata), day.source + "+table")


def measure_day(day: Trace, clf) -> dict:
    """Everything one composed day gives through the Service, beside what its labels call for."""
    run = run_service(day, clf, reference=upright_reference(day))
    truth = run_service(day, LabelClassifier(day))
    tally = score(day, run.outputs)
    m = tally.metrics()
    sit_true = labelled_s(day, "sitting")
    expected, missed, extra = alert_check(run, truth)
    return {"tally": tally, "sit_stand": m["sit_stand_accuracy"], "sedentary": m["sedentary_balanced_accuracy"],
            "sit_true_s": sit_true, "sit_s": run.summary.sitting_s,
            "sit_err": (run.summary.sitting_s - sit_true) / sit_true,
            "alerts": len(run.of(Alert)), "alerts_expected": expected, "alerts_missed": missed, "alerts_extra": extra,
            "breaks": len(run.of(BreakTaken)), "breaks_expected": len(truth.of(BreakTaken)),
            "false_breaks": false_breaks(day, run), "seated_h": labelled_s(day, "sitting", "lying") / 3600}


def measure_table(day: Trace, clf, seed: int) -> dict:
    """Alerts during the table hour and minutes reported as not worn."""
    run = run_service(with_table(day, seed), clf, reference=upright_reference(day))
    alerts = [e for e in run.of(Alert) if TABLE_AFTER_S < e.t < TABLE_AFTER_S + TABLE_S]
    return {"table_alerts": len(alerts), "not_worn_min": run.summary.not_worn_s / 60}


def evaluate(root: str, users: list[int], fold_size: int, variants: tuple[str, ...], *,
             seed_offset: int = 0, days_dir: Path | None = None, fit: Callable[[list[Trace]], object] | None = None,
             make: Callable[[object, float], object] | None = None, out=print) -> dict[str, dict[int, dict]]:
    """Per variant, per user: the day's measures (models from ``fit``, classifiers from ``make``; days
    kept in ``days_dir``, see ``compose_day``)."""
    traces = read_hapt(root)  # models learn from everyone outside the fold
    fit = fit or (lambda trs: train(trs))
    make = make or (lambda model, hz: StreamingClassifier(model, sample_rate_hz=hz))
    results: dict[str, dict[int, dict]] = {v: {} for v in variants}
    for k in range(0, len(users), fold_size):
        held = set(users[k:k + fold_size])
        model = fit([tr for tr in traces if int(tr.metadata["user"]) not in held])
        for user in sorted(held):
            days: dict[str, Trace] = {}
            for variant in variants:
                base = "one" if variant == "table" else variant
                if base not in days:
                    days[base] = compose_day(root, user, base, seed_offset, days_dir)
                day = days[base]
                if variant == "table":
                    r = measure_table(day, make(model, day.sample_rate_hz), user + seed_offset)
                else:
                    r = measure_day(day, make(model, day.sample_rate_hz))
                results[variant][user] = r
                out(format_row(user, variant, r))
    return results


HEADER = (f"{'user':>4s} {'day':>6s} {'sit/stand':>9s} {'sedentary':>9s} {'sit err':>8s} {'alerts':>7s} "
          f"{'breaks':>7s} {'false':>5s}")


def format_row(user: int, variant: str, r: dict) -> str:
    if variant == "table":
        return f"{user:4d} {variant:>6s} table hour: {r['table_alerts']} alerts, {r['not_worn_min']:.1f} min not worn"
    return (f"{user:4d} {variant:>6s} {r['sit_stand']:9.4f} {r['sedentary']:9.4f} {r['sit_err']:+8.2%} "
            f"{r['alerts']:>3d}/{r['alerts_expected']:<3d}{'!' if r['alerts_missed'] or r['alerts_extra'] else ' '}"
            f"{r['breaks']:>3d}/{r['breaks_expected']:<3d} "
            f"{r['false_breaks']:5d}")


def pooled(variant: str, rows: dict[int, dict]) -> str:
    """One line of pooled figures for a variant."""
    if variant == "table":
        return (f"table hour: {sum(r['table_alerts'] for r in rows.values())} alerts in {len(rows)} days; not worn "
                f"at least {min(r['not_worn_min'] for r in rows.values()):.1f} min "
                f"(median {np.median([r['not_worn_min'] for r in rows.values()]):.1f})")
    total = Tally()
    for r in rows.values():
        total.add(r["tally"])
    m = total.metrics()
    err = np.array([r["sit_err"] for r in rows.values()])
    pooled_err = (sum(r["sit_s"] for r in rows.values()) / sum(r["sit_true_s"] for r in rows.values())) - 1
    seated_h = sum(r["seated_h"] for r in rows.values())
    fb = sum(r["false_breaks"] for r in rows.values())
    short = [u for u, r in rows.items() if r["alerts_missed"] or r["alerts_extra"]]
    over = [u for u, e in zip(rows, err) if abs(e) > 0.05]
    return (f"{variant}: sit/stand {m['sit_stand_accuracy']:.4f}, sedentary balanced "
            f"{m['sedentary_balanced_accuracy']:.4f}, sitting time pooled {pooled_err:+.2%}, per day |error| median "
            f"{np.median(np.abs(err)):.2%} max {np.max(np.abs(err)):.2%} (over 5%: {over or 'none'}); "
            f"alerts missed or extra: {short or 'none'}; false breaks {fb} in {seated_h:.0f} h seated "
            f"({8 * fb / seated_h:.2f} per 8 h)")


def plan_line(name: str, plan: str) -> str:
    return f"{name} ({sum(d for _, d in parse_plan(plan)) / 3600:.1f} h): {plan}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hapt", default=str(Path(__file__).resolve().parent.parent.parent / "shared/data/hapt"))
    ap.add_argument("--users", default="1-24")
    ap.add_argument("--fold-size", type=int, default=4)
    ap.add_argument("--variants", default="one,shifts,table",
                    help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument("--seed-offset", type=int, default=0, help="other days: seed = user + this")
    ap.add_argument("--days", metavar="DIR", help="save each composed day here; read it back if already there")
    args = ap.parse_args()
    variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        ap.error(f"unknown variant {bad[0]!r} (allowed: {', '.join(VARIANTS)})")
    users = sorted(parse_users(args.users))
    print(plan_line("composed day", DAY))
    if "walks" in variants:
        print(plan_line("walks day", WALKS_DAY))
    print(HEADER, flush=True)
    try:
        results = evaluate(args.hapt, users, args.fold_size, variants, seed_offset=args.seed_offset,
                           days_dir=Path(args.days) if args.days else None, out=lambda line: print(line, flush=True))
    except SitsenseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for variant in variants:
        print("pooled, " + pooled(variant, results[variant]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
