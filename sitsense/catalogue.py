"""The exercise catalogue: hip-flexor releases and the complementary strength work, as data.

Written in the project's own words from the facts of the exercise guide (``../shared/seed/``):
each exercise with its kind, level, equipment, where the body is, its dose, a one-line cue,
the steps and a caution. The coach (``coach.py``) chooses from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import CoachConfig

KINDS = ("static", "dynamic", "self-release", "strength")
LEVELS = ("beginner", "advanced")
POSITIONS = ("upright", "kneeling", "floor")

SAFETY_NOTE = (
    "Look for a gentle pull, never pain: ease off or stop if anything hurts sharply or gets worse. "
    "If your legs go numb, tingle or feel weak, or the back stiffness stays despite regular practice, "
    "stop and have a doctor or physiotherapist look at it."
)


@dataclass(frozen=True)
class Dose:
    """How much of an exercise: ``holds`` sets of ``hold_s`` seconds, or of ``reps`` repetitions.

    With ``per_side`` every set is done once on each side (left then right). Repetition sets are
    timed as ``reps * rep_s`` so the buzzer can guide them too. ``rest_s`` separates the sets of a
    one-sided exercise (a plank needs a breather; switching legs does not).
    """

    holds: int
    hold_s: float = 0.0
    reps: int = 0
    rep_s: float = 0.0
    per_side: bool = True
    rest_s: float = 0.0
    note: str = ""  # shown after the dose, e.g. how alternating reps split between legs

    @property
    def segment_s(self) -> float:
        """Length of one timed block (one hold, or one set of repetitions)."""
        return self.hold_s if self.hold_s else self.reps * self.rep_s

    @property
    def segments(self) -> int:
        return self.holds * (2 if self.per_side else 1)

    @property
    def work_s(self) -> float:
        """Time under the exercise, rests excluded: the most release time one session earns."""
        return self.segments * self.segment_s

    @property
    def total_s(self) -> float:
        """Wall time of a guided session, rests included."""
        return self.work_s + (0.0 if self.per_side else (self.holds - 1) * self.rest_s)

    def text(self) -> str:
        side = " per side" if self.per_side else ""
        note = f" ({self.note})" if self.note else ""
        if self.hold_s:
            return f"{self.holds} × {self.hold_s:g} s{side}{note}"
        return f"{self.holds} × {self.reps}{side}{note}"


@dataclass(frozen=True)
class Exercise:
    """One release or complementary exercise, written in the project's own words."""

    id: str
    name: str
    kind: str
    level: str
    equipment: tuple[str, ...]
    targets: str  # "hip_flexors", "glutes" or "core"
    position: str  # where the body is: upright, kneeling or on the floor
    dose: Dose
    cue: str
    steps: tuple[str, ...]
    caution: str

    @property
    def hip_flexor_static(self) -> bool:
        return self.kind == "static" and self.targets == "hip_flexors"

    def as_dict(self) -> dict[str, Any]:
        """The alert payload: what a phone or console needs to show the prompt."""
        return {"id": self.id, "name": self.name, "kind": self.kind, "dose": self.dose.text(),
                "dose_s": self.dose.work_s, "cue": self.cue, "steps": list(self.steps),
                "caution": self.caution}


CATALOGUE: tuple[Exercise, ...] = (
    Exercise(
        id="kneeling_hip_flexor", name="Kneeling hip flexor stretch", kind="static", level="beginner",
        equipment=(), targets="hip_flexors", position="kneeling",
        dose=Dose(holds=2, hold_s=30.0),
        cue="Half-kneel, tuck the tailbone, ease the hips ahead: 2 × 30 s a side.",
        steps=(
            "Drop one knee to the floor (a folded towel under it helps) and plant the other foot ahead, "
            "both knees bent to about a right angle.",
            "Tuck the tailbone under and tighten the buttock on the side of the down knee.",
            "Shift your weight slowly forward until the front of that hip feels a gentle pull.",
            "Stay tall, brace the belly lightly and breathe slowly until the buzz.",
            "Swap knees at the buzz and repeat on the other side.",
        ),
        caution="If the arch in your back deepens, tuck the pelvis more instead of sinking further forward; "
                "pad a sore knee.",
    ),
    Exercise(
        id="couch_stretch", name="Couch stretch", kind="static", level="advanced",
        equipment=(), targets="hip_flexors", position="kneeling",
        dose=Dose(holds=2, hold_s=30.0),
        cue="Back shin up a wall or sofa, front foot forward, chest tall: 2 × 30 s a side.",
        steps=(
            "Kneel with your back to a wall or to the front of a sofa.",
            "Slide one shin up against it so the top of that foot rests on the surface.",
            "Step the other foot forward into a half lunge.",
            "Raise the chest until the trunk is upright, then let the hips drift forward; the pull lands "
            "in the front of the thigh and hip.",
            "Come out slowly and change legs at the buzz.",
        ),
        caution="Hard on the knee and thigh: start with the knee further from the wall, and master the "
                "kneeling version first. Skip it if the kneecap complains.",
    ),
    Exercise(
        id="leg_swings", name="Leg swings", kind="dynamic", level="beginner",
        equipment=(), targets="hip_flexors", position="upright",
        dose=Dose(holds=2, reps=15, rep_s=1.2),
        cue="Hand on a desk, swing one leg front to back, a bit higher each time: 15 a leg.",
        steps=(
            "Stand side-on to a desk, wall or chair back and rest one hand on it.",
            "Let the outer leg swing ahead of you and behind you like a pendulum, knee soft.",
            "Begin with small arcs and let them grow as the hip loosens.",
            "Keep the trunk quiet: the motion comes from the hip, not from the back.",
            "Turn round and swing the other leg at the buzz.",
        ),
        caution="Swing under control; no kicking or bouncing at the ends of the arc.",
    ),
    Exercise(
        id="walking_lunges", name="Walking lunges", kind="dynamic", level="beginner",
        equipment=(), targets="hip_flexors", position="upright",
        dose=Dose(holds=2, reps=16, rep_s=3.0, per_side=False, rest_s=15.0, note="8 a leg, alternating"),
        cue="Long step, back knee down toward the floor, chest up: 8 lunges a leg.",
        steps=(
            "Find a clear strip of floor a few metres long.",
            "Take a long step and bend both knees until the back knee hovers just off the floor.",
            "Keep the chest up and the front knee above the ankle.",
            "Push through the front foot and bring the back leg through into the next step.",
            "Notice the front of the rear hip opening on every step.",
        ),
        caution="Shorten the step if the knees or your balance object; stay near a wall if you wobble.",
    ),
    Exercise(
        id="foam_roll_quads", name="Foam rolling, thighs and hip flexors", kind="self-release",
        level="beginner", equipment=("foam_roller",), targets="hip_flexors", position="floor",
        dose=Dose(holds=1, hold_s=60.0),
        cue="Face down on the roller, glide knee to hip, pause on sore spots: 60 s a leg.",
        steps=(
            "Lie face down on your forearms with the roller under the front of one thigh.",
            "Glide slowly between just above the knee and the crease of the hip.",
            "On a tender spot, stop and breathe there for a few breaths.",
            "Tilt a little outward to reach the side of the hip (the TFL muscle).",
            "Change legs at the buzz.",
        ),
        caution="Firm but bearable pressure; keep off the kneecap, bony points, bruises and varicose veins.",
    ),
    Exercise(
        id="psoas_ball", name="Massage ball for the psoas", kind="self-release", level="advanced",
        equipment=("massage_ball",), targets="hip_flexors", position="floor",
        dose=Dose(holds=1, hold_s=60.0),
        cue="Ball just inside the front hip bone, lie on it, breathe slowly: 60 s a side.",
        steps=(
            "Lie face down and set the ball just inside one front hip bone, toward the navel.",
            "Lower your weight onto it bit by bit, propped on your forearms.",
            "Breathe slowly into the belly and let the deep hip muscle soften around the ball.",
            "Ease off and move to the other side at the buzz.",
        ),
        caution="Advanced: have a physiotherapist show you the spot before trying it alone. Keep the ball "
                "off the soft belly; if you feel a pulse under it, or anything uncomfortable, move it.",
    ),
    Exercise(
        id="glute_bridge", name="Glute bridge", kind="strength", level="beginner",
        equipment=(), targets="glutes", position="floor",
        dose=Dose(holds=2, reps=12, rep_s=3.0, per_side=False, rest_s=20.0),
        cue="On your back, knees bent, squeeze the buttocks and lift the hips: 2 × 12.",
        steps=(
            "Lie on your back with knees bent and feet flat, hip-width apart.",
            "Squeeze the buttocks and press through the heels until knees, hips and shoulders line up.",
            "Pause a second at the top without arching the back.",
            "Lower slowly, one segment of the spine after the other.",
        ),
        caution="Lift with the buttocks, not the lower back; stop short of any back pain.",
    ),
    Exercise(
        id="clamshell", name="Clamshell", kind="strength", level="beginner",
        equipment=(), targets="glutes", position="floor",
        dose=Dose(holds=1, reps=12, rep_s=2.5),
        cue="On your side, knees bent, heels together, open the top knee: 12 a side.",
        steps=(
            "Lie on your side with hips and knees bent and the heels together.",
            "Keeping the heels in contact, lift the top knee as far as the pelvis allows without rolling back.",
            "Lower it with control.",
            "Roll over and work the other side at the buzz.",
        ),
        caution="Keep the pelvis still; a small clean movement beats a big rocking one.",
    ),
    Exercise(
        id="plank", name="Forearm plank", kind="strength", level="beginner",
        equipment=(), targets="core", position="floor",
        dose=Dose(holds=2, hold_s=25.0, per_side=False, rest_s=15.0),
        cue="Forearms and toes, one straight line, belly braced: 2 × 25 s.",
        steps=(
            "Rest on your forearms and toes with the elbows under the shoulders.",
            "Make one straight line from head to heels, tailbone slightly tucked.",
            "Brace the belly as if expecting a poke and keep breathing.",
            "Drop to your knees if the hips start to sag.",
        ),
        caution="Stop if the lower back aches; short holds with good form are the point.",
    ),
    Exercise(
        id="bird_dog", name="Bird-dog", kind="strength", level="beginner",
        equipment=(), targets="core", position="floor",
        dose=Dose(holds=1, reps=8, rep_s=4.0),
        cue="On all fours, reach out one arm and the opposite leg, pause, return: 8 a side.",
        steps=(
            "Kneel on all fours, hands under the shoulders and knees under the hips.",
            "Reach one arm forward and the opposite leg back until both are level with the trunk.",
            "Hold for a breath without letting the hips tip.",
            "Come back and switch to the other arm and leg.",
        ),
        caution="Keep the lower back flat; lift the leg only as high as you can without arching.",
    ),
)

BY_ID = {e.id: e for e in CATALOGUE}


def exercise(exercise_id: str) -> Exercise:
    """The catalogue entry with this id (KeyError names the known ids)."""
    try:
        return BY_ID[exercise_id]
    except KeyError:
        raise KeyError(f"unknown exercise {exercise_id!r} (known: {', '.join(BY_ID)})") from None


def eligible(cfg: CoachConfig) -> list[Exercise]:
    """Exercises the wearer's level and equipment allow, in catalogue order."""
    have = set(cfg.equipment)
    return [e for e in CATALOGUE
            if (cfg.level == "advanced" or e.level == "beginner") and set(e.equipment) <= have]
