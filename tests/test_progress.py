"""The progress bar draws on a terminal only, and only once work has taken a while; train and evaluate use it."""

from __future__ import annotations

import io
import sys
from contextlib import redirect_stdout

import numpy as np
import pytest

import sitsense.progress
from sitsense.cli import main
from sitsense.plan import parse_plan
from sitsense.posture import training
from sitsense.posture.evaluate import evaluate_traces, make_factory
from sitsense.progress import Progress
from sitsense.synth import synthesize
from sitsense.traces import read_hapt, write_trace


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_draws_on_a_terminal_with_percent_and_eta():
    out = Tty()
    p = Progress(100, "simulate", stream=out, delay_s=0)
    p.update(50)
    assert "simulate" in out.getvalue() and "50.0%" in out.getvalue() and "ETA" in out.getvalue()
    p.close()
    assert out.getvalue().endswith("\r")


def test_silent_when_piped_quiet_or_quick():
    piped = io.StringIO()
    Progress(100, stream=piped, delay_s=0).update(50)
    assert piped.getvalue() == ""
    quiet = Tty()
    Progress(100, stream=quiet, quiet=True, delay_s=0).update(50)
    assert quiet.getvalue() == ""
    quick = Tty()
    Progress(100, stream=quick, delay_s=60).update(50)
    assert quick.getvalue() == ""


# ---------------------------------------------------------------- train and evaluate


class EagerProgress(Progress):
    """The real bar without the two-second grace, so short test jobs draw it."""

    def __init__(self, *args, **kw):
        kw.setdefault("delay_s", 0.0)
        super().__init__(*args, **kw)


@pytest.fixture
def eager(monkeypatch):
    monkeypatch.setattr(sitsense.progress, "Progress", EagerProgress)


def run_cli(argv: list[str], monkeypatch, stderr: io.StringIO) -> str:
    """Run the CLI with ``stderr`` as its standard error; returns what it printed on stdout."""
    monkeypatch.setattr(sys, "stderr", stderr)
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(argv) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def labelled_trace(tmp_path_factory):
    path = tmp_path_factory.mktemp("trace") / "day.csv.gz"
    write_trace(path, synthesize(parse_plan("stand 1m, sit 12m, walk 2m, sit 6m, stand 2m"), sample_rate_hz=25, seed=3))
    return path


def test_evaluate_shows_the_bar_on_a_terminal_and_nothing_when_quiet_or_piped(eager, monkeypatch, labelled_trace):
    tty = Tty()
    shown = run_cli(["evaluate", str(labelled_trace)], monkeypatch, tty)
    assert "evaluate [" in tty.getvalue() and "ETA" in tty.getvalue() and tty.getvalue().endswith("\r")
    quiet, piped = Tty(), io.StringIO()
    assert run_cli(["evaluate", str(labelled_trace), "--quiet"], monkeypatch, quiet) == shown
    assert run_cli(["evaluate", str(labelled_trace)], monkeypatch, piped) == shown
    assert quiet.getvalue() == piped.getvalue() == ""
    assert "sit_stand_accuracy" in shown


def test_evaluate_reports_seconds_of_recording_block_by_block():
    traces = [synthesize(parse_plan(p), sample_rate_hz=25, seed=s)
              for s, p in enumerate(["stand 1m, sit 9m", "walk 2m, sit 4m, stand 3m"])]
    seen = []
    with_bar = evaluate_traces(iter(traces), make_factory(), rate_hz=20, block_s=60,
                               progress=lambda done, total: seen.append((done, total)))
    plain = evaluate_traces(traces, make_factory(), rate_hz=20, block_s=60)
    assert with_bar.metrics() == plain.metrics()
    total = sum(tr.duration_s for tr in traces)
    assert {t for _, t in seen} == {total}
    done = [d for d, _ in seen]
    assert len(done) >= 19 and done == sorted(done) and done[-1] == pytest.approx(total)
    assert len({round(d) for d in done}) >= 15  # it moves along the recordings, not per recording


def test_train_shows_the_bar_on_a_terminal_and_quiet_changes_nothing(eager, monkeypatch, hapt_dir, tmp_path):
    tty, quiet = Tty(), Tty()
    shown = run_cli(["train", "--hapt", str(hapt_dir), "--users", "1", "-o", str(tmp_path / "a.npz")],
                    monkeypatch, tty)
    assert "train [" in tty.getvalue() and "ETA" in tty.getvalue() and tty.getvalue().endswith("\r")
    hushed = run_cli(["train", "--hapt", str(hapt_dir), "--users", "1", "-o", str(tmp_path / "b.npz"), "--quiet"],
                     monkeypatch, quiet)
    assert quiet.getvalue() == ""
    assert hushed.replace("b.npz", "a.npz") == shown
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_train_reports_the_fit_iterations_and_changes_nothing(monkeypatch, hapt_dir):
    traces = read_hapt(hapt_dir, {1})
    seen = []
    watched = training.train(traces, iterations=1000, progress=lambda done, total: seen.append((done, total)))
    plain = training.train(traces, iterations=1000)
    for key in ("mean", "scale", "weights", "bias", "hidden_weights", "hidden_bias", "forward_axis"):
        assert np.array_equal(getattr(watched, key), getattr(plain, key)), key
    total = training.ROWS_AS_ITERATIONS + 1000
    assert {t for _, t in seen} == {total}
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == total
    during_fit = [d for d in done if training.ROWS_AS_ITERATIONS < d < total]
    assert len(set(during_fit)) >= 3, "the fit's iterations were not reported"
