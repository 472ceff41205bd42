"""Traces read and written in chunks: the same samples and the same errors whatever the chunk size,
numbers exactly as Python reads and prints them, and hostile files (a gzip bomb, a line of
100 MB, a header of a million columns) refused with one short line in bounded memory."""

from __future__ import annotations

import gzip
import zlib

import numpy as np
import pytest

from sitsense.errors import TraceError
from sitsense.plan import parse_plan
from sitsense.synth import synthesize
from sitsense.trace_reader import MAX_LINE_BYTES, TraceReader
from sitsense.trace_writer import TraceFileWriter, format_rows
from sitsense.traces import LABELS, Trace, parse_trace, read_trace, write_trace

from .memory_limit import run_capped

CHUNKS = (37, 4096, 1 << 24)


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    """A labelled synthetic trace, plain and gzip, with a second posture so labels change."""
    tr = synthesize(parse_plan("stand 30s, sit 1m, walk 30s, lie 30s, off 30s"), sample_rate_hz=25, seed=4,
                    start_time="2026-03-02T09:00:00+01:00")
    folder = tmp_path_factory.mktemp("day")
    write_trace(folder / "day.csv", tr)
    write_trace(folder / "day.csv.gz", tr)
    return tr, folder


def _same(a: Trace, b: Trace) -> bool:
    return (np.array_equal(a.t_s, b.t_s) and np.array_equal(a.accel_g, b.accel_g)
            and np.array_equal(np.signbit(a.accel_g), np.signbit(b.accel_g))
            and (a.labels is None) == (b.labels is None) and (a.labels is None or np.array_equal(a.labels, b.labels)))


@pytest.mark.parametrize("name", ["day.csv", "day.csv.gz"])
def test_the_same_samples_whatever_the_chunk_size(day, name):
    tr, folder = day
    whole = read_trace(folder / name)
    np.testing.assert_allclose(whole.accel_g, tr.accel_g, atol=5e-5)
    assert np.array_equal(whole.labels, tr.labels) and whole.metadata["start_time"] == tr.metadata["start_time"]
    for size in CHUNKS:
        reader = TraceReader(folder / name, chunk_bytes=size)
        parts = list(reader.chunks())
        assert _same(reader.read(), whole)
        assert len(parts) >= (2 if size < 1 << 20 else 1)
        assert sum(len(p) for p in parts) == len(whole)


def test_a_read_bigger_than_the_line_limit_is_cut_into_lines_not_refused():
    rows = "".join(f"{i / 50:.3f},0.0000,-0.5000,1.0000,sitting\n" for i in range(80_000))  # 3 MB
    raw = ("# sitsense-trace v1\nt,ax,ay,az,label\n" + rows).encode()
    assert len(TraceReader.from_bytes(raw, "x.csv", chunk_bytes=1 << 26).read()) == 80_000
    assert len(TraceReader.from_bytes(raw[:-1], "x.csv", chunk_bytes=1 << 26).read()) == 80_000


def test_a_chunk_holds_about_chunk_bytes_of_text(day):
    _, folder = day
    sizes = [len(p) for p in TraceReader(folder / "day.csv", chunk_bytes=8192).chunks()]
    line_bytes = (folder / "day.csv").stat().st_size / sum(sizes)
    assert max(sizes) * line_bytes < 2 * 8192 + 200


BAD = {
    "unknown label late": (3000, "0,1.0000,0.0000,0.0000,dancing"),
    "time backwards early": (7, "-5.000,1.0000,0.0000,0.0000,standing"),
    "missing field": (1500, "1.0000,0.0000,0.0000,standing"),
    "not a number": (4000, "1.000,1.0000,abc,0.0000,standing"),
    "not finite": (200, "1.000,1.0000,nan,0.0000,standing"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_line_gives_the_same_one_line_error_whatever_the_chunk_size(day, case):
    _, folder = day
    row, bad = BAD[case]
    lines = (folder / "day.csv").read_bytes().split(b"\n")
    body_start = next(i for i, line in enumerate(lines) if line.startswith(b"t,")) + 1
    lines[body_start + row] = bad.encode()
    raw = b"\n".join(lines)
    messages = set()
    for size in CHUNKS:
        with pytest.raises(TraceError) as exc:
            TraceReader.from_bytes(raw, "day.csv", chunk_bytes=size).read()
        messages.add(str(exc.value))
    assert len(messages) == 1, messages
    message = messages.pop()
    assert message.startswith(f"day.csv: line {body_start + row + 1}: ") and "\n" not in message


def test_the_first_bad_line_is_named_not_a_later_one():
    text = b"# sitsense-trace v1\nt,ax,ay,az,label\n0.0,0,0,1,\n0.5,0,0,1,\n0.2,0,0,1,\n0.7,0,0,1,dancing\n"
    with pytest.raises(TraceError, match="line 5: time goes backwards"):
        parse_trace(text, "x.csv")


def test_blank_lines_and_windows_line_ends_keep_line_numbers_exact():
    text = b"# sitsense-trace v1\r\nt,ax,ay,az\r\n0,0,0,1\r\n\r\n1,0,0,1\r\n\r\n\r\n0.5,0,0,1\r\n"
    with pytest.raises(TraceError, match="line 8: time goes backwards"):
        parse_trace(text, "x.csv")


def test_numbers_are_read_exactly_as_python_reads_them():
    rng = np.random.default_rng(7)
    n = 2000
    t = np.cumsum(rng.uniform(0.01, 50, n))
    cols = [[f"{v:.3f}" for v in t]]
    for decimals in (4, 6, 0):
        v = rng.normal(0, 3, n) * rng.choice([1, 1e-6, 1e3], n)
        cols.append([f"{x:.{decimals}f}" for x in v])
    cols[2][:50] = ["-0.0000"] * 50  # negative zero must stay negative
    labels = rng.choice(list(LABELS) + [""], n)
    lines = [",".join(row) for row in zip(*cols, labels)]
    raw = ("# sitsense-trace v1\nt,ax,ay,az,label\n" + "\n".join(lines) + "\n").encode()
    want = np.array([[float(x) for x in row] for row in zip(*cols[1:])])
    for size in (997, 1 << 20):
        tr = TraceReader.from_bytes(raw, "x.csv", chunk_bytes=size).read()
        assert np.array_equal(tr.t_s, np.array([float(x) for x in cols[0]]))
        assert np.array_equal(tr.accel_g, want) and np.array_equal(np.signbit(tr.accel_g), np.signbit(want))
        assert [(LABELS + ("",))[c] for c in tr.labels] == list(labels)


def test_a_trace_without_its_rate_gets_it_from_its_samples(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("# sitsense-trace v1\nt,ax,ay,az\n" + "".join(f"{i / 20:.3f},0,0,1\n" for i in range(41)))
    assert TraceReader(path).sample_rate_hz == pytest.approx(20.0)
    assert TraceReader(path).summary().samples == 41


def test_a_line_longer_than_a_mebibyte_is_one_short_error(tmp_path):
    head = b"# sitsense-trace v1\nt,ax,ay,az\n0,0,0,1\n"
    for name, data in (("long.csv", head + b"1," + b"0" * (3 * MAX_LINE_BYTES) + b",0,1\n"),
                       ("long.csv.gz", gzip.compress(head + b"7" * (100 << 20)))):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(TraceError) as exc:
            TraceReader(path).read()
        assert str(exc.value).startswith(f"{path}: line 4: longer than 1024 KiB") and len(str(exc.value)) < 200


def _gzip_bomb(path, gib: int = 1) -> None:
    """A trace header then ``gib`` GiB of zero bytes, as ~1 MB of gzip (one member per MiB)."""
    member = gzip.compress(bytes(1 << 20), compresslevel=9, mtime=0)
    with open(path, "wb") as f:
        f.write(gzip.compress(b"# sitsense-trace v1\nt,ax,ay,az\n", mtime=0))
        for _ in range(1024 * gib):
            f.write(member)


def test_a_gzip_bomb_is_refused_in_bounded_memory(tmp_path):
    """1 MB of gzip that inflates to 1 GiB without a line break: it peaked at 4.2 GB; now one line
    from a process that may not use more than 400 MiB."""
    bomb = tmp_path / "bomb.csv.gz"
    _gzip_bomb(bomb)
    assert bomb.stat().st_size < 2 << 20
    for args in (["simulate", str(bomb)], ["run", "--sensor", f"fake:{bomb}", "--speed", "0", "--no-state"]):
        proc = run_capped(args, 400)
        assert proc.returncode == TraceError.exit_code, proc.stderr[-800:]
        assert proc.stderr.strip() == f"sitsense: {bomb}: line 3: longer than 1024 KiB (a sample line is under " \
                                      "100 bytes): not a sitsense trace?"


def test_a_header_of_a_million_columns_is_one_short_error(tmp_path):
    for columns in (10 ** 6, 10 ** 5):
        path = tmp_path / f"wide{columns}.csv"
        path.write_text("# sitsense-trace v1\n" + ",".join(f"c{i}" for i in range(columns)) + "\n0\n")
        with pytest.raises(TraceError) as exc:
            TraceReader(path)
        assert str(exc.value).startswith(f"{path}: line 2: ") and len(str(exc.value)) < 250


def test_a_header_longer_than_a_mebibyte_is_refused(tmp_path):
    path = tmp_path / "chatty.csv"
    path.write_text("# sitsense-trace v1\n" + "# just a comment\n" * 100_000 + "t,ax,ay,az\n0,0,0,1\n")
    with pytest.raises(TraceError, match="the header .* is longer than 1024 KiB"):
        TraceReader(path)


def test_a_long_metadata_value_is_quoted_short_in_the_error(tmp_path):
    path = tmp_path / "meta.csv"
    path.write_text("# sitsense-trace v1\n# sample_rate_hz=" + "9x" * 100_000 + "\nt,ax,ay,az\n0,0,0,1\n")
    with pytest.raises(TraceError) as exc:
        TraceReader(path)
    assert "sample_rate_hz" in str(exc.value) and "200000 characters" in str(exc.value) and len(str(exc.value)) < 200


# ---------------------------------------------------------------- writing

def test_rows_are_formatted_exactly_as_python_formats_them():
    rng = np.random.default_rng(3)
    n = 5000
    t = np.sort(rng.uniform(-10, 2e6, n))
    acc = np.concatenate([rng.normal(0, 1, (n // 2, 3)),
                          (rng.integers(-10 ** 6, 10 ** 6, (n - n // 2, 3)) + 0.5) / 10 ** 4])  # exact ties
    acc[:20] = -1e-7  # prints as -0.0000
    acc[20:40] = -0.0
    labels = rng.integers(-1, len(LABELS), n).astype(np.int8)
    names = LABELS + ("",)
    for decimals in (4, 6, 1):
        want = "".join(f"{t[i]:.3f}," + ",".join(f"{x:.{decimals}f}" for x in acc[i]) + f",{names[labels[i]]}\n"
                       for i in range(n))
        assert format_rows(t, acc, labels, decimals=decimals) == want.encode()


def test_a_trace_written_in_chunks_is_the_trace_written_whole(tmp_path, day):
    tr, folder = day
    for suffix in (".csv", ".csv.gz"):
        path = tmp_path / f"chunked{suffix}"
        with TraceFileWriter(path, dict(tr.metadata, sample_rate_hz="25"), labelled=True) as writer:
            for lo in range(0, len(tr), 333):
                writer.write(tr.t_s[lo:lo + 333], tr.accel_g[lo:lo + 333], tr.labels[lo:lo + 333])
        assert path.read_bytes() == (folder / f"day{suffix}").read_bytes()


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    path = tmp_path / "x.csv.gz"
    with pytest.raises(RuntimeError):
        with TraceFileWriter(path, {}, labelled=False) as writer:
            writer.write(np.arange(10) / 10, np.zeros((10, 3)))
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_a_gzip_writer_flushes_to_a_readable_file(tmp_path):
    path = tmp_path / "x.csv.gz"
    writer = TraceFileWriter(path, {"sample_rate_hz": "10"}, labelled=False).open()
    writer.write(np.arange(50) / 10, np.tile([0.0, 0.0, 1.0], (50, 1)))
    writer.flush()
    partial = zlib.decompressobj(31).decompress(writer.part.read_bytes())
    assert partial.count(b"\n") == 3 + 50
    writer.close()
    assert len(read_trace(path)) == 50


# ---------------------------------------------------------------- making traces

def test_synth_gives_the_same_samples_whatever_the_chunk_size():
    from sitsense.synth import synth_chunks

    plan = parse_plan("stand 1m, sit 4m, walk 1m, lie 2m, off 2m, stand 30s")
    whole = synthesize(plan, sample_rate_hz=50, seed=9)
    for size in (97, 4096, 1 << 22):
        parts = list(synth_chunks(plan, sample_rate_hz=50, seed=9, chunk_samples=size))
        assert all(len(p) <= size for p in parts)
        assert np.array_equal(np.concatenate([p.accel_g for p in parts]), whole.accel_g)
        assert np.array_equal(np.concatenate([p.labels for p in parts]), whole.labels)
        assert np.array_equal(np.concatenate([p.t_s for p in parts]), whole.t_s)


def test_compose_gives_the_same_day_whatever_the_chunk_size(hapt_dir):
    from sitsense.compose import compose, compose_stream

    plan = parse_plan("stand 1m, sit 6m, walk 1m, sit 3m, stand 30s")
    whole = compose(hapt_dir, 2, plan, seed=4)
    for size in (333, 1 << 22):
        meta, chunks = compose_stream(hapt_dir, 2, plan, seed=4, chunk_samples=size)
        parts = list(chunks)
        assert meta == whole.metadata
        assert np.array_equal(np.concatenate([p.accel_g for p in parts]), whole.accel_g)
        assert np.array_equal(np.concatenate([p.labels for p in parts]), whole.labels)
        assert np.array_equal(np.concatenate([p.t_s for p in parts]), whole.t_s)


def test_the_synth_command_writes_the_trace_synthesize_makes(tmp_path):
    from sitsense.cli import main

    out = tmp_path / "x.csv.gz"
    assert main(["synth", "--plan", "stand 1m, sit 3m", "--seed", "2", "--rate", "25", "-o", str(out)]) == 0
    write_trace(tmp_path / "y.csv.gz", synthesize(parse_plan("stand 1m, sit 3m"), sample_rate_hz=25, seed=2))
    assert out.read_bytes() == (tmp_path / "y.csv.gz").read_bytes()
