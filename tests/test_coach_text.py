"""No sentence of the guide may be copied into the product: catalogue, prompts, safety note, docs."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest

from sitsense.catalogue import CATALOGUE, SAFETY_NOTE
from sitsense.coach import Coach
from sitsense.config import CoachConfig
from sitsense.events import Alert

from .conftest import REPO, require

GUIDE = REPO.parent / "shared" / "seed" / "000_738155c3fa00fd8d.txt"
MAX_SHARED_WORDS = 5  # names such as "kneeling hip flexor stretch" are 4 words; 6 in a row is a copy
MAX_SIMILARITY = 0.7  # difflib ratio between two sentences' word lists


def words(text: str) -> list[str]:
    text = text.replace("’", "'").lower()
    return re.findall(r"[a-z0-9']+", text)


def sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?:])\s+|\n+|(?<=\S) - ", text)
    return [p.strip() for p in parts if len(words(p)) >= 3]


def longest_shared_run(a: list[str], b: list[str]) -> int:
    m = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return m.find_longest_match(0, len(a), 0, len(b)).size


def copies(product: list[str], guide_text: str) -> list[str]:
    """Product sentences that share a long word run with, or closely paraphrase, a guide sentence."""
    guide = [words(s) for s in sentences(guide_text)]
    found = []
    for sent in product:
        w = words(sent)
        for g in guide:
            run = longest_shared_run(w, g)
            ratio = difflib.SequenceMatcher(None, w, g, autojunk=False).ratio() if len(w) >= 7 else 0.0
            if run > MAX_SHARED_WORDS or ratio >= MAX_SIMILARITY:
                found.append(f"{sent!r} ~ {' '.join(g)!r} (run {run}, ratio {ratio:.2f})")
    return found


def product_sentences() -> list[str]:
    texts = [SAFETY_NOTE]
    for e in CATALOGUE:
        texts += [e.name, e.cue, e.caution, *e.steps]
    coach = Coach(CoachConfig(level="advanced", equipment=["foam_roller", "massage_ball"]), seed=3)
    for r, bout_min in ((1, 30), (2, 40), (3, 50)):
        a = coach.on_alert(Alert(bout_min * 60.0, f"a{r}", bout_min * 60.0, 0.0, r, ""))
        texts.append(a.message)
    for doc in (REPO / "README.md", REPO / "hardware.md", *sorted((REPO / "docs").rglob("*.md"))):
        texts.append(doc.read_text(encoding="utf-8"))
    return [s for t in texts for s in sentences(t)]


@pytest.fixture(scope="module")
def guide_text() -> str:
    require(GUIDE.is_file(), f"the guide is not at {GUIDE}")
    return GUIDE.read_text(encoding="utf-8")


def test_no_guide_sentence_in_the_product(guide_text):
    found = copies(product_sentences(), guide_text)
    assert not found, "copied from the guide:\n" + "\n".join(found)


def test_the_check_catches_a_copy_and_a_light_edit(guide_text):
    guide = sentences(guide_text)
    target = next(s for s in guide if s.startswith("Gently push your hips forward"))
    assert copies([target], guide_text)
    edited = target.replace("Gently push", "Slowly push").replace("kneeling leg", "lower leg")
    assert copies([edited], guide_text)
    assert not copies(["Shift your weight slowly forward until the front of that hip feels a gentle pull."],
                      guide_text)


def test_product_text_is_checked_at_all():
    assert len(product_sentences()) > 60
