"""The release loop's brain: the exercise catalogue, which release to suggest, and guided holds.

The tracker decides *when* the wearer has sat too long and whether a prompt was heeded; the coach
decides *what* to do about it (one exercise from the catalogue, its dose and cue), times the holds
once the wearer stands up, and turns a heeded break into release minutes against the daily goal.
Pure and deterministic: time only comes in with the events and ``tick(t)``; no I/O, no threads.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .config import CoachConfig
from .events import (ACTIVE, Alert, AlertOutcome, BreakTaken, DaySummary, Event, ExerciseRecognised, HoldCue,
                     PostureChanged, RunSummary)

log = logging.getLogger(__name__)

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

_BY_ID = {e.id: e for e in CATALOGUE}


def exercise(exercise_id: str) -> Exercise:
    """The catalogue entry with this id (KeyError names the known ids)."""
    try:
        return _BY_ID[exercise_id]
    except KeyError:
        raise KeyError(f"unknown exercise {exercise_id!r} (known: {', '.join(_BY_ID)})") from None


def eligible(cfg: CoachConfig) -> list[Exercise]:
    """Exercises the wearer's level and equipment allow, in catalogue order."""
    have = set(cfg.equipment)
    return [e for e in CATALOGUE
            if (cfg.level == "advanced" or e.level == "beginner") and set(e.equipment) <= have]


# Relative weight of each kind when choosing: the releases lead, the complementary strength work
# (done on the floor, so the sensor cannot prove it) is mixed in now and then; long bouts lean hard
# on static hip-flexor stretches.
_WEIGHTS_NORMAL = {"static": 3.0, "dynamic": 4.0, "self-release": 1.0, "strength": 0.5}
_WEIGHTS_LONG = {"static": 12.0, "dynamic": 2.0, "self-release": 1.0, "strength": 0.5}


@dataclass(frozen=True)
class Cue:
    """One scheduled cue of a guided session (offset from its start)."""

    offset_s: float
    cue: str  # start | switch | done
    hold: int


def hold_schedule(ex: Exercise) -> list[Cue]:
    """The cues that time one session of ``ex``: start, switch at the end of each hold, done."""
    d = ex.dose
    cues = [Cue(0.0, "start", 1)]
    t = 0.0
    for k in range(1, d.segments + 1):
        t += d.segment_s
        if k == d.segments:
            cues.append(Cue(t, "done", k))
        elif d.per_side or not d.rest_s:
            cues.append(Cue(t, "switch", k + 1))
        else:  # end of a set: rest, then start the next one
            cues.append(Cue(t, "switch", k + 1))
            t += d.rest_s
            cues.append(Cue(t, "start", k + 1))
    return cues


@dataclass
class _Prompt:
    alert_id: str
    bout_start_t: float
    t: float
    exercise: Exercise


@dataclass
class _Session:
    exercise: Exercise
    start_t: float
    cues: list[Cue]
    alert_id: str | None
    next_i: int = 1  # cue 0 (start) is emitted when the session begins
    seen: str = ""  # label of the last recognition window
    seen_run: int = 0  # consecutive windows with that label
    reported: bool = False


class Coach:
    """Chooses releases, fills alerts, times guided holds and counts release minutes.

    The service passes every Alert through ``on_alert`` and every AlertOutcome through
    ``on_outcome`` (both return the enriched event to publish instead), then every event to
    ``on_event`` (a DaySummary starts a new day), calls ``tick(t)`` once per step and
    ``start_release(t)`` for the button's double press. Events it returns go to the outputs.
    """

    def __init__(self, cfg: CoachConfig | None = None, *, seed: int | None = None,
                 heed_window_s: float = 600.0):
        self.cfg = cfg or CoachConfig()
        self.heed_window_s = heed_window_s
        self._rng = random.Random(self.cfg.seed if seed is None else seed)
        self._pool = eligible(self.cfg)
        if not self._pool:  # cannot happen with the shipped catalogue, but keep the contract clear
            raise ValueError("no exercise fits the configured level and equipment")
        self._history: list[str] = []  # every choice, oldest first
        self._used_today: dict[str, int] = {}
        self._by_bout: dict[float, Exercise] = {}
        self._prompts: dict[str, _Prompt] = {}
        self._pending: _Prompt | None = None
        self._session: _Session | None = None
        self._credited_bouts: set[float] = set()
        self._buf_t: list[np.ndarray] = []
        self._buf_a: list[np.ndarray] = []
        self.recognised_today_s: dict[str, float] = {}  # dynamic releases seen in the signal
        self.release_today_s = 0.0  # heeded prompts, each break capped by its exercise's dose
        self.guided_today_s = 0.0  # finished button-started sessions (no prompt: not in release_today_s)

    # ------------------------------------------------------------ choosing

    def is_long(self, bout_s: float, reminder: int = 1) -> bool:
        """A bout that earns a static hip-flexor stretch: past the first reminder or long_bout_min."""
        return reminder >= 2 or bout_s >= self.cfg.long_bout_min * 60.0

    def choose(self, bout_s: float, reminder: int = 1, *, static_first: bool = False) -> Exercise:
        """Pick the next exercise: no back-to-back repeat, static stretches after long bouts.

        ``static_first`` takes a static hip-flexor stretch whenever the rotation allows one.
        """
        long_bout = self.is_long(bout_s, reminder)
        weights = _WEIGHTS_LONG if long_bout else _WEIGHTS_NORMAL
        recent = set(self._history[-min(2, len(self._pool) - 1):]) if self._history else set()
        candidates = [e for e in self._pool if e.id not in recent] or list(self._pool)
        if static_first and any(e.hip_flexor_static for e in candidates):
            candidates = [e for e in candidates if e.hip_flexor_static]
        if not long_bout and self._history and not any(
                _BY_ID[i].kind == "dynamic" for i in self._history[-2:]):
            weights = {**weights, "dynamic": weights["dynamic"] * 3}  # mix dynamic ones in
        w = [weights[e.kind] / (1.0 + self._used_today.get(e.id, 0)) for e in candidates]
        pick = self._rng.choices(candidates, weights=w, k=1)[0]
        self._history.append(pick.id)
        del self._history[:-20]
        self._used_today[pick.id] = self._used_today.get(pick.id, 0) + 1
        return pick

    # ------------------------------------------------------------ events

    def on_alert(self, alert: Alert) -> Alert:
        """The alert with its exercise, message and safety note filled in."""
        long_bout = self.is_long(alert.bout_s, alert.reminder)
        ex = self._by_bout.get(alert.bout_start_t)
        if ex is None or (long_bout and not ex.hip_flexor_static):
            # A new bout, or a long one whose suggestion is not yet a static hip-flexor stretch: a long
            # bout (a reminder, or a first alert that fires late) takes one whenever the rotation allows.
            # When the rotation has just used it, this reminder gets another exercise, and the next one
            # tries again (by then the stretch has left the last two picks). Once static, it is kept.
            ex = self.choose(alert.bout_s, alert.reminder, static_first=long_bout)
            self._by_bout[alert.bout_start_t] = ex
        prompt = _Prompt(alert.id, alert.bout_start_t, alert.t, ex)
        self._prompts[alert.id] = prompt
        while len(self._prompts) > 50:  # outcomes that never came (service restarted, say)
            self._prompts.pop(next(iter(self._prompts)))
        self._pending = prompt
        return replace(alert, exercise=ex.as_dict(), message=self.message(alert, ex), safety=SAFETY_NOTE)

    def message(self, alert: Alert, ex: Exercise) -> str:
        """The one-line prompt text: bout length, reminder number, the release and today's progress."""
        minutes = int(alert.bout_s // 60)
        if alert.reminder <= 1:
            head = f"{minutes} min seated. Stand up for a release: {ex.name}, {ex.dose.text()}."
        elif alert.reminder == 2:
            head = f"Reminder 2: still seated after {minutes} min. {ex.name}, {ex.dose.text()}."
        else:
            head = (f"Reminder {alert.reminder}: {minutes} min without a break. "
                    f"Up now: {ex.name}, {ex.dose.text()}.")
        done_min = self.release_today_s / 60.0
        goal_min = self.cfg.daily_goal_min
        tail = (f" Release today: {done_min:.0f} of {goal_min:g} min."
                if done_min < goal_min else f" Today's {goal_min:g} release minutes are done; keep moving.")
        return head + tail

    def on_outcome(self, outcome: AlertOutcome) -> AlertOutcome:
        """The outcome with ``exercise_id`` and ``release_s`` (the break up to the dose, once per break)."""
        return self._enrich(outcome)

    def on_event(self, event: Event) -> list[Event]:
        """React to any event (after ``on_alert``/``on_outcome`` for those); returns new events (hold cues)."""
        if isinstance(event, PostureChanged):
            return self._on_posture(event)
        if isinstance(event, BreakTaken):
            return self._maybe_start(event.t)
        if isinstance(event, DaySummary) and not isinstance(event, RunSummary):
            self.new_day()  # the tracker closed a local day
        return []

    def _on_posture(self, ev: PostureChanged) -> list[Event]:
        if ev.posture in ACTIVE:
            return self._maybe_start(ev.t)
        s = self._session
        if s is None:
            return []
        stops = ev.posture in ("sitting", "not_worn") or (ev.posture == "lying" and s.exercise.position == "upright")
        if stops:
            self._session = None
            log.info("guided %s stopped: wearer is %s", s.exercise.id, ev.posture)
            return [HoldCue(ev.t, "cancel", s.exercise.id, 0)]
        return []

    def _maybe_start(self, t: float) -> list[Event]:
        p = self._pending
        if (not self.cfg.guided_holds or self._session is not None or p is None
                or t - p.t > self.heed_window_s or t < p.t):
            return []
        return self._begin(p.exercise, t, p.alert_id)

    def start_release(self, t: float, exercise_id: str | None = None) -> list[Event]:
        """Start a guided release now (the button's double press); the pending prompt's exercise if any."""
        if exercise_id:
            ex = exercise(exercise_id)
        elif self._pending is not None and t - self._pending.t <= self.heed_window_s:
            ex = self._pending.exercise
        else:
            ex = self.choose(0.0)
        out: list[Event] = []
        if self._session is not None:
            out.append(HoldCue(t, "cancel", self._session.exercise.id, 0))
        alert_id = self._pending.alert_id if self._pending and self._pending.exercise is ex else None
        return out + self._begin(ex, t, alert_id)

    def _begin(self, ex: Exercise, t: float, alert_id: str | None) -> list[Event]:
        self._session = _Session(ex, t, hold_schedule(ex), alert_id)
        log.info("guided %s started at %.1f s", ex.id, t)
        return [HoldCue(t, "start", ex.id, 1)]

    def tick(self, t: float) -> list[Event]:
        """Cues of the running session that are due by ``t`` (stamped with their scheduled time)."""
        s = self._session
        out: list[Event] = []
        while s is not None and s.next_i < len(s.cues) and s.start_t + s.cues[s.next_i].offset_s <= t:
            c = s.cues[s.next_i]
            out.append(HoldCue(s.start_t + c.offset_s, c.cue, s.exercise.id, c.hold))
            s.next_i += 1
        if s is not None and s.next_i >= len(s.cues):
            self._session = None
            if s.alert_id is None:  # no prompt, so no outcome: kept apart, nothing proves the break
                self.guided_today_s += s.exercise.dose.work_s
            elif self._pending is not None and self._pending.alert_id == s.alert_id:
                self._pending = None  # done: a later stand-up in this window does not restart it
        return out

    def observe(self, t_s: np.ndarray, accel_g: np.ndarray, sample_rate_hz: float) -> list[Event]:
        """Feed raw samples while a guided session runs; reports a dynamic release seen in the signal.

        Cheap when idle (nothing is kept). Two consecutive 10 s windows (hop 5 s) that the
        recogniser labels as the session's exercise give one ExerciseRecognised per session.
        """
        from .recognition import EXERCISE_LABELS, WINDOW_S, recognise

        s = self._session
        if s is None or s.exercise.id not in EXERCISE_LABELS.values():
            self._buf_t, self._buf_a = [], []
            return []
        self._buf_t.append(np.asarray(t_s, float))
        self._buf_a.append(np.asarray(accel_g, float))
        t_all, a_all = np.concatenate(self._buf_t), np.concatenate(self._buf_a)
        n, hop = int(round(WINDOW_S * sample_rate_hz)), int(round(WINDOW_S / 2 * sample_rate_hz))
        out: list[Event] = []
        while len(t_all) >= n:
            label = recognise(a_all[:n], sample_rate_hz)
            end_t = float(t_all[n - 1])
            s.seen_run = s.seen_run + 1 if label == s.seen else 1
            s.seen = label
            if EXERCISE_LABELS.get(label) == s.exercise.id:
                self.recognised_today_s[s.exercise.id] = self.recognised_today_s.get(s.exercise.id, 0.0) + (
                    WINDOW_S if s.seen_run == 1 else WINDOW_S / 2)
                if s.seen_run >= 2 and not s.reported:
                    s.reported = True
                    dur = WINDOW_S * 1.5
                    out.append(ExerciseRecognised(end_t, s.exercise.id, end_t - dur, dur))
            t_all, a_all = t_all[hop:], a_all[hop:]
        self._buf_t, self._buf_a = [t_all], [a_all]
        return out

    @property
    def session(self) -> tuple[str, float] | None:
        """(exercise id, start t) of the running guided session, or None."""
        return (self._session.exercise.id, self._session.start_t) if self._session else None

    def _enrich(self, o: AlertOutcome) -> AlertOutcome:
        p = self._prompts.pop(o.alert_id, None)
        if p is None:
            return o
        release_s = 0.0
        if o.heeded and p.bout_start_t not in self._credited_bouts:
            release_s = min(max(o.break_s, 0.0), p.exercise.dose.work_s)
            self._credited_bouts.add(p.bout_start_t)
            self.release_today_s += release_s
        if self._pending is p:
            self._pending = None
        return replace(o, release_s=release_s, exercise_id=p.exercise.id)

    def new_day(self) -> None:
        """Reset today's counters at the local day boundary (the rotation history carries on)."""
        self.release_today_s = 0.0
        self.guided_today_s = 0.0
        self._used_today.clear()
        self.recognised_today_s.clear()
        self._credited_bouts.clear()
        self._by_bout.clear()
