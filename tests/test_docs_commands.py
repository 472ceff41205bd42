"""Every command the documentation shows (README.md, hardware.md, docs/) is marked, and the runnable
ones run (docs/design/docs.md, "Runnable blocks"): page by page, in order, in a scratch folder with a
copy of examples/ and config/, against fake sensors and synthetic traces, with every state location
pointed into the scratch folder. An ``output`` block after a runnable one must appear in what it
printed. Every ``toml`` block is a config fragment that ``check-config`` accepts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from sitsense.config import config_from_dict

from .conftest import REPO

DOC_FILES = [REPO / "README.md", REPO / "hardware.md", *sorted((REPO / "docs").rglob("*.md"))]
SHELL_LANGS = {"sh", "bash", "shell", "console"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)[ \t]*(?P<info>[^`\s]*)[^`]*$")
MARKER = re.compile(r"^<!-- (?:(?P<kind>runnable|output)|not runnable: (?P<reason>\S.*?)) -->$")
BLOCK_TIMEOUT_S = 120


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    marker: str | None  # "runnable", "output", "not runnable" or None
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, each with the marker on the line before it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence = m.group("indent"), m.group("fence")
        body, j = [], i + 1
        while j < len(lines) and lines[j].strip() != fence:
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        assert j < len(lines), f"{path.relative_to(REPO)}:{i + 1}: the block is never closed"
        mark = MARKER.match(lines[i - 1].strip()) if i else None
        marker = None if mark is None else (mark.group("kind") or "not runnable")
        found.append(Block(path, i + 1, m.group("info").lower(), "\n".join(body) + "\n", marker,
                           (mark.group("reason") or "") if mark else ""))
        i = j + 1
    return found


ALL = [b for path in DOC_FILES for b in blocks(path)]
PAGES = sorted({b.path for b in ALL if b.marker == "runnable"})


def test_every_shell_block_is_marked_runnable_or_says_why_not():
    unmarked = [b.where for b in ALL if b.lang in SHELL_LANGS and b.marker not in ("runnable", "not runnable")]
    assert not unmarked, ("shell blocks without '<!-- runnable -->' or '<!-- not runnable: REASON -->' on the "
                          f"line before: {unmarked}")
    wrong = [b.where for b in ALL if b.marker == "runnable" and b.lang not in ("sh", "bash")]
    assert not wrong, f"only sh blocks can be runnable: {wrong}"


def test_output_blocks_follow_a_runnable_block():
    for path in DOC_FILES:
        page = blocks(path)
        for before, block in zip(page, page[1:]):
            if block.marker == "output":
                assert before.marker == "runnable", f"{block.where}: an output block must follow a runnable one"
        assert not (page and page[0].marker == "output"), f"{page[0].where}: output of nothing"


def test_the_docs_have_runnable_blocks_on_every_reader_path():
    runnable = {b.path.relative_to(REPO).as_posix() for b in ALL if b.marker == "runnable"}
    for page in ("README.md", "docs/wear/calibrate.md", "docs/wear/troubleshooting.md",
                 "docs/simulator/examples.md", "docs/simulator/simulate.md", "docs/simulator/synth-compose.md"):
        assert page in runnable, f"{page} shows no runnable command"
    assert sum(b.marker == "runnable" for b in ALL) >= 15


def _scratch(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(REPO / "examples", work / "examples")
    shutil.copytree(REPO / "config", work / "config")
    bin_dir = str(Path(sys.executable).parent)  # the venv's: sitsense, python
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SITSENSE_", "XDG_", "NOTIFY_SOCKET", "COLUMNS", "PYTHON"))}
    env.update(PATH=bin_dir + os.pathsep + env.get("PATH", "/usr/bin:/bin"), HOME=str(tmp_path / "home"),
               STATE_DIRECTORY=str(tmp_path / "state"), XDG_STATE_HOME=str(tmp_path / "xdg-state"), TZ="UTC")
    return work, env


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(REPO).as_posix() for p in PAGES])
def test_the_runnable_blocks_of_a_page_run(page: Path, tmp_path):
    work, env = _scratch(tmp_path)
    page_blocks = blocks(page)
    for k, block in enumerate(page_blocks):
        if block.marker != "runnable":
            continue
        try:
            done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.text], cwd=work, env=env,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{block.where}: still running after {BLOCK_TIMEOUT_S} s")
        printed = done.stdout + done.stderr
        assert done.returncode == 0, f"{block.where}: exit status {done.returncode}\n{block.text}---\n{printed}"
        after = page_blocks[k + 1] if k + 1 < len(page_blocks) else None
        if after is not None and after.marker == "output":
            missing = [line for line in after.text.splitlines() if line.strip() and line.rstrip() not in printed]
            assert not missing, f"{after.where}: not printed by the block above: {missing}\n---\n{printed}"


def test_the_readme_demo_prints_what_the_readme_shows():
    """The demo command makes .venv, so it is not runnable here; its last step is, and what the README
    shows after it must be what that step prints."""
    readme = blocks(REPO / "README.md")
    k = next(i for i, b in enumerate(readme) if "sitsense simulate examples/desk-morning.csv.gz" in b.text)
    command = readme[k].text.strip().split(" && ")[-1].replace(".venv/bin/", "")
    assert command == "sitsense simulate examples/desk-morning.csv.gz" and readme[k + 1].lang == "text"
    shown = [line.rstrip() for line in readme[k + 1].text.splitlines() if line.strip() and line.strip() != "..."]
    done = subprocess.run([str(Path(sys.executable).with_name("sitsense")), *command.split()[1:]], cwd=REPO,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "TZ": "UTC"})
    assert done.returncode == 0, done.stderr
    assert [line for line in shown if line not in done.stdout] == []
    assert len(shown) >= 6


def test_every_toml_block_is_a_config_check_config_accepts():
    tomls = [b for b in ALL if b.lang == "toml"]
    assert len(tomls) >= 2
    for block in tomls:
        config_from_dict(tomllib.loads(block.text), source=block.where, check_files=False)


def test_a_failing_block_and_a_missing_marker_are_caught(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n\n```sh\nsitsense nope\n```\n\n<!-- not runnable: needs a Pi -->\n```sh\nsudo x\n```\n"
                    "\n<!-- runnable -->\n  ```sh\n  false\n  ```\n")
    found = blocks(page)
    assert [(b.marker, b.reason, b.text) for b in found] == [(None, "", "sitsense nope\n"),
                                                             ("not runnable", "needs a Pi", "sudo x\n"),
                                                             ("runnable", "", "false\n")]
    work, env = _scratch(tmp_path)
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", "sitsense simulate nope.csv | head -1"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0  # pipefail: a failing sitsense is not hidden by the pipe
