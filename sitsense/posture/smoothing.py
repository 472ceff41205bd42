"""The sequence filter: an HMM forward pass whose only doors between postures are their movements.

Hidden states are the four postures and the six postural transitions (``model.STATES``). A
posture is left only through a transition state (sitting -> sit_to_stand -> standing), and a
transition state is only possible while the hip is lifted or lowered (``gate.py``): a shift in
the chair, slumping or perching turns the pelvis without that, so however much a still posture
comes to look like another one, it cannot become it. Walking and standing switch directly; gait
ends a missed stand-up (a leak from sitting or lying into walking), and sitting and lying leak
into each other (both sedentary). There is no other leak. Where the hip's movement is clear it decides
without the model (``_commit``): out of standing, a clear lowering with no walk in it ends sitting
(or lying), however upright the wearer then looks, and so does one made after a walk once the
wearer had stopped (``movement_after_calm``: the walk's steps swamp every other measure of the
hip); out of sitting, a small lift the filter was not confident was a stand-up does not end it,
however upright the wearer then looks.

Evidence that a window sees again and again is not new evidence: after a movement the filter
weighs the movement and the posture it ends in, and at the first quiet step (no lift, no turn)
commits to the likeliest posture; while it stays quiet, nothing changes. The model's posterior
is used per movement direction (rising, lowering, rolling between sitting and lying), since
where the movement starts and ends is known from the sequence, and sitting and standing are
never taken as certain (``prob_floor``): a wearer the model never saw may look like the other.

The wearer (``wearer.py``) is taught every posture entered through a confident movement and
weighs in on steady steps after a movement. ``sequence=False`` in the classifier gives the plain
HMM of earlier versions (any movement opens every door, small leaks everywhere), for comparison.
"""

from __future__ import annotations

import numpy as np

from .model import STATES
from .wearer import WearerModel

_S = {name: i for i, name in enumerate(STATES)}
# Per-second rates of leaving one state for another (transition states last about 3 s).
_RATES_PER_S = {
    ("sitting", "sit_to_stand"): 0.02, ("sitting", "sit_to_lie"): 0.005,
    ("standing", "stand_to_sit"): 0.02, ("standing", "stand_to_lie"): 0.005,
    ("standing", "walking"): 0.05, ("walking", "standing"): 0.05,
    ("walking", "stand_to_sit"): 0.005,
    ("lying", "lie_to_sit"): 0.01, ("lying", "lie_to_stand"): 0.01,
    ("stand_to_sit", "sitting"): 0.35, ("sit_to_stand", "standing"): 0.35,
    ("sit_to_lie", "lying"): 0.35, ("lie_to_sit", "sitting"): 0.35,
    ("stand_to_lie", "lying"): 0.35, ("lie_to_stand", "standing"): 0.35,
    ("sit_to_stand", "walking"): 0.05, ("lie_to_stand", "walking"): 0.05,
}
# People sit down at the end of a walk: in the sequence filter as readily as from standing still.
WALK_DOOR_PER_S = {("walking", "stand_to_sit"): 0.02, ("walking", "stand_to_lie"): 0.005}
_LEAK_PER_S = 2e-5  # between two postures without a transition (recovers from a missed one)
LEAKS = (("sitting", "walking"), ("lying", "walking"), ("sitting", "lying"), ("lying", "sitting"))
# Each state reports as a posture: a transition still counts as the posture it leaves ...
REPORTED_AS = {"stand_to_sit": "standing", "sit_to_stand": "sitting", "sit_to_lie": "sitting",
               "lie_to_sit": "lying", "stand_to_lie": "standing", "lie_to_stand": "lying"}
# ... and leads to the posture it enters (what a commit counts it as).
DESTINATION = {"stand_to_sit": "sitting", "sit_to_stand": "standing", "sit_to_lie": "lying",
               "lie_to_sit": "sitting", "stand_to_lie": "lying", "lie_to_stand": "standing"}
OUTPUT_POSTURES = ("sitting", "standing", "walking", "lying")
# Lying is held through a movement while the trunk stays tilted more than 60 degrees from upright:
# a wearer turning over stays level, one sitting up comes within it (sitting tilts 10-45 degrees)
LYING_HELD_MAX_COS = float(np.cos(np.radians(60.0)))
# Walking "leads" a step (or a movement had a walk in it) when its belief is at least this
WALKING_LEADS = 0.5


def transition_matrix(step_s: float, leak_per_s: float = _LEAK_PER_S, leaks=LEAKS,
                      extra_rates: dict[tuple[str, str], float] | None = None) -> np.ndarray:
    """Row-stochastic (C, C) matrix of state changes over one step of ``step_s`` seconds.

    ``leaks`` lists the posture pairs that leak (None: every pair); ``extra_rates`` override rates.
    """
    n = len(STATES)
    rate = np.zeros((n, n))
    for (a, b), r in {**_RATES_PER_S, **(extra_rates or {})}.items():
        rate[_S[a], _S[b]] = r
    for a, b in (leaks if leaks is not None else
                 [(x, y) for x in STATES[:4] for y in STATES[:4] if x != y]):
        if rate[_S[a], _S[b]] == 0.0:
            rate[_S[a], _S[b]] = leak_per_s
    total = rate.sum(axis=1)
    stay = np.exp(-total * step_s)
    a_mat = np.where(total[:, None] > 0, rate / np.maximum(total[:, None], 1e-12), 0.0) * (1 - stay)[:, None]
    a_mat[np.diag_indices(n)] = stay
    return a_mat


def report_matrix(as_posture: dict[str, str] = REPORTED_AS) -> np.ndarray:
    """(C, 4) 0/1 matrix summing state probabilities into postures (a transition as ``as_posture`` says)."""
    m = np.zeros((len(STATES), len(OUTPUT_POSTURES)))
    for i, name in enumerate(STATES):
        m[i, OUTPUT_POSTURES.index(as_posture.get(name, name))] = 1.0
    return m


class ForwardFilter:
    """HMM forward pass over steps; keeps its belief across blocks.

    With ``factors`` and ``quiet`` (from the movement, see the module docstring) it is the sequence
    filter: a quiet step after a movement commits the likeliest posture, and quiet steps after a
    commit change nothing. With a ``wearer`` it also weighs the wearer's own sitting and standing
    orientations on steady steps, and teaches it the postures entered through a confident movement.
    """

    def __init__(self, step_s: float, prior: np.ndarray, *, emission_power: float = 0.7,
                 leak_per_s: float = _LEAK_PER_S, still_transition_factor: float = 1e-3, leaks=LEAKS,
                 prob_floor: float = 0.0, group: bool = False, extra_rates: dict | None = None,
                 confident: float = 0.5, relearn_steps: int = 60, wearer_power: float = 1.0,
                 clear_lift_g: float = 0.15, after_walk_lowering_g: float = 0.2, sure_after_walk: float = 0.9):
        self.transition = transition_matrix(step_s, leak_per_s, leaks, extra_rates)
        self.log_prior = np.log(np.asarray(prior, float))
        self.emission_power = emission_power
        self.still_transition_factor = still_transition_factor
        self.report = report_matrix()
        self.destination = report_matrix(DESTINATION)
        self.prob_floor = prob_floor
        self.group = group
        self.confident = confident
        self.relearn_steps = relearn_steps
        self.wearer_power = wearer_power
        self.clear_lift_g = clear_lift_g  # a hip movement this large decides alone (HAPT's gentlest sit-down: 0.14 g)
        # ... and a lowering this large after a walk, once the wearer stopped (stopping alone: at most 0.14 g
        # on 264 composed walk-to-stand ends; the sit-downs that need this rule lower by 0.3-0.42 g)
        self.after_walk_lowering_g = after_walk_lowering_g
        # ... without either, a walk ends in sitting only if the filter is this sure of it (every composed
        # sit-down after a walk without a sit-down movement measured: 1.00; stops counted as sitting: 0.49-0.99)
        self.sure_after_walk = sure_after_walk
        self.belief = self.initial_belief()
        self.frozen = False  # committed and quiet since: nothing changes until the next movement
        self.episode_max = np.zeros(len(STATES) - 4)  # largest belief of each transition since the last commit
        self.episode_walk = 0.0  # ... and of walking
        self.sit_after_walk = 0.0  # largest stand_to_sit belief since walking last led
        self.lowered_after_walk = 0.0  # largest lowering after a calm moment since walking last led
        self.learning: str | None = None  # the committed posture was entered confidently: keep learning it
        self.since_learned = 0
        self.commits: list[tuple[int, str, bool]] = []  # (step, posture, confident) of the last run
        self.last_commit: int | None = None  # the state of the last commit

    @staticmethod
    def initial_belief() -> np.ndarray:
        b = np.zeros(len(STATES))
        b[:4] = 0.25
        return b

    def reset(self) -> None:
        self.belief = self.initial_belief()
        self.frozen = False
        self.episode_max[:] = 0.0
        self.episode_walk = 0.0
        self.sit_after_walk = 0.0
        self.lowered_after_walk = 0.0
        self.learning = None
        self.last_commit = None

    def likelihoods(self, log_proba: np.ndarray) -> np.ndarray:
        """Relative likelihood (m, C) of each state from the model's log-probabilities."""
        if self.group:  # the movement's direction, not its start or end: those come from the sequence
            p = np.exp(log_proba)
            up, down, roll = p[:, 5] + p[:, 9], p[:, 4] + p[:, 8], p[:, 6] + p[:, 7]
            p[:, 5] = p[:, 9] = up
            p[:, 4] = p[:, 8] = down
            p[:, 6] = p[:, 7] = roll
            p /= p.sum(axis=1, keepdims=True)
            log_proba = np.log(np.maximum(p, 1e-300))
        if self.prob_floor:  # sitting and standing: a wearer the model never saw may look like the other
            p = np.exp(log_proba)
            p[:, :2] += self.prob_floor
            log_proba = np.log(p / p.sum(axis=1, keepdims=True))
        return np.exp((log_proba - self.log_prior) * self.emission_power)

    def hold(self, quiet: np.ndarray, steady: np.ndarray, learns: bool) -> np.ndarray | None:
        """The reported probabilities (m, 4) of steps in which nothing can change: committed, every step
        quiet and no relearning due (what ``run`` would give, without the model's evidence); else None."""
        if not (self.frozen and quiet.all()):
            return None
        if self.learning and learns:
            n = int(np.count_nonzero(steady))
            if self.since_learned + n >= self.relearn_steps:
                return None
            self.since_learned += n
        self.commits = []
        return np.repeat((self.belief @ self.report)[None], len(quiet), axis=0)

    def run(self, log_proba: np.ndarray, valid: np.ndarray, moving: np.ndarray | None = None,
            factors: np.ndarray | None = None, quiet: np.ndarray | None = None,
            unit_g: np.ndarray | None = None, steady: np.ndarray | None = None,
            wearer: WearerModel | None = None, on_commit=None, episode=None,
            upright_cos: np.ndarray | None = None,
            after_calm=None) -> np.ndarray:
        """Filter m steps of model log-probabilities; return the reported posture probabilities (m, 4).

        Invalid steps (too few samples) only let time pass. ``moving`` (the plain HMM): on steps not
        moving the transition states' likelihood is scaled by ``still_transition_factor``.
        ``factors`` (m, C) scale each state's likelihood by how well the step's movement fits it;
        ``quiet`` marks steps without movement; ``unit_g`` and ``steady`` give the posture's gravity
        direction and whether it is held still, for the ``wearer``. ``on_commit(step, posture,
        confident)`` hears every commit and says whether the wearer may learn from it.
        ``episode(step)`` gives the largest hip movement (g) up to that step since the last commit, and
        whether it lowered the hip first (see ``_commit``). ``upright_cos``: the cosine of each step's
        tilt from the wearer's upright (NaN where unknown). ``after_calm(step)``: the range (g) of the
        last movement after a calm moment and whether it lowered the hip (``movement_after_calm``),
        asked only after a walk.
        """
        like = self.likelihoods(log_proba)
        if moving is not None:
            like[~moving, 4:] *= self.still_transition_factor
        if factors is not None:
            like *= factors
        like /= like.max(axis=1, keepdims=True)
        m = len(like)
        out = np.empty((m, len(STATES)))
        b = self.belief
        a_mat = self.transition
        self.commits = []
        sequence = quiet is not None
        personal = wearer is not None and unit_g is not None and steady is not None
        llr = self._wearer_evidence(wearer, unit_g, steady, 0) if personal else None
        held_lying = np.zeros(m, dtype=bool)  # moving out of a committed lying posture
        for i in range(m):
            if sequence and quiet[i] and self.frozen:
                out[i] = b
                if personal and self.learning and steady[i]:
                    self.since_learned += 1
                    if self.since_learned >= self.relearn_steps:  # the bout goes on: follow its shifts
                        wearer.add(self.learning, unit_g[i], count=False)
                        self.since_learned = 0
                        llr[i + 1:] = self._wearer_evidence(wearer, unit_g, steady, i + 1)
                continue
            self.frozen = False
            if sequence and self.last_commit == _S["lying"]:
                held_lying[i] = True
            b = b @ a_mat
            if valid[i]:
                li = like[i]
                if llr is not None and llr[i]:
                    li = li.copy()
                    li[0] *= np.exp(0.5 * self.wearer_power * llr[i])
                    li[1] *= np.exp(-0.5 * self.wearer_power * llr[i])
                b = b * li
                s = b.sum()
                b = b / s if s > 0 else self.initial_belief()
                if sequence:
                    np.maximum(self.episode_max, b[4:], out=self.episode_max)
                    if b[2] > self.episode_walk:
                        self.episode_walk = float(b[2])
                    if b[2] >= WALKING_LEADS:
                        self.sit_after_walk = 0.0
                        self.lowered_after_walk = 0.0
                    else:
                        if b[4] > self.sit_after_walk:
                            self.sit_after_walk = float(b[4])
                        if (after_calm is not None and self.episode_walk >= WALKING_LEADS
                                and self.lowered_after_walk < self.after_walk_lowering_g):  # else already decided
                            lowered_g, down = after_calm(i)
                            if down and lowered_g > self.lowered_after_walk:
                                self.lowered_after_walk = lowered_g
                    if quiet[i]:
                        b = self._commit(i, b, wearer if personal else None, unit_g, on_commit,
                                         like[i] if valid[i] else None, episode)
                        if personal and self.learning:
                            llr[i + 1:] = self._wearer_evidence(wearer, unit_g, steady, i + 1)
            out[i] = b
        self.belief = b
        reported = out @ self.report
        if held_lying.any():
            # a wearer turning over while lying rolls the pelvis through sitting- and standing-like
            # tilts but stays level: until the movement settles, lying is reported unless the wearer
            # walks away or the trunk is up (a wearer sitting or standing up from lying)
            keep = held_lying & (out[:, _S["walking"]] < WALKING_LEADS)
            if upright_cos is not None:
                keep &= ~(upright_cos > LYING_HELD_MAX_COS)
            reported[keep] = np.eye(len(OUTPUT_POSTURES))[OUTPUT_POSTURES.index("lying")]
        return reported

    def _commit(self, i: int, b: np.ndarray, wearer: WearerModel | None, unit_g: np.ndarray | None,
                on_commit=None, like_i: np.ndarray | None = None, episode=None) -> np.ndarray:
        """Settle on the likeliest posture after a movement; learn it if its entry was confident.

        A change between sitting and lying also needs the step to look more like the new posture
        than the old (``like_i``): a roll of the pelvis does not say which way it went, and a wearer
        turning over while lying would otherwise be carried into sitting by the roll's door.

        The hip's movement (``episode``) also decides on its own where it is clear. Out of standing, a
        movement that lowered the hip first by ``clear_lift_g`` or more, with no walk in it, ends
        sitting (or lying, if that is likelier), however upright the wearer then looks: a wearer who
        sits down onto the edge of a chair, or whose pelvis barely tilts, would otherwise stay counted
        as standing until they next walk. Out of sitting, a lift under ``clear_lift_g`` ends in
        standing only if the filter was confident of a stand-up: shifting forward in the chair lifts
        the hip a little too, and a perched wearer can look upright. At the end of a walk (whose steps
        swamp the hip's movement), a lowering by ``after_walk_lowering_g`` or more made after the
        wearer had stopped (``after_calm`` in ``run``) ends sitting (or lying), and so does a sit-down
        the filter was confident of after the last step, unless the filter believed in a stand-up more in the
        same movement (the stop of a walk can light up both: the network is unsure); either way
        however upright the wearer then looks. Without either, a walk ends in sitting only if the
        filter is at least ``sure_after_walk`` sure of it: a wearer who stops and stands can look
        half like sitting, and the weak sit-down belief of a stop would otherwise tip it."""
        dest = b @ self.destination  # a movement still under way counts where it leads
        best = int(np.argmax(dest))
        sed = (_S["sitting"], _S["lying"])
        prev = self.last_commit
        if like_i is not None and prev in sed and best in sed and best != prev and like_i[best] < like_i[prev]:
            best = prev
        if episode is not None and best == _S["standing"] and prev in (_S["standing"], _S["sitting"]):
            lift_g, down_first = episode(i)
            walked = self.episode_walk >= WALKING_LEADS
            if ((prev == best and not walked and down_first and lift_g >= self.clear_lift_g)
                    or (walked and self.lowered_after_walk >= self.after_walk_lowering_g)):
                best = _S["sitting"] if dest[_S["sitting"]] >= dest[_S["lying"]] else _S["lying"]
            elif (self.episode_walk >= WALKING_LEADS and self.sit_after_walk >= self.confident
                  and self.sit_after_walk > self.episode_max[1]):
                best = _S["sitting"]
            elif prev == _S["sitting"] and lift_g < self.clear_lift_g and self.episode_max[1] < self.confident:
                best = prev
        elif (episode is not None and best == _S["sitting"] and self.episode_walk >= WALKING_LEADS
              and dest[best] < self.sure_after_walk and dest[_S["standing"]] >= dest[_S["lying"]]
              and self.sit_after_walk < self.confident and self.lowered_after_walk < self.after_walk_lowering_g):
            best = _S["standing"]
        self.last_commit = best
        posture = STATES[best]
        e = dict(zip(STATES[4:], self.episode_max))
        confident = ((posture == "sitting" and e["stand_to_sit"] >= self.confident)
                     or (posture == "standing" and e["sit_to_stand"] >= self.confident))
        self.commits.append((i, posture, confident))
        if on_commit is not None and not on_commit(i, posture, confident):
            wearer = None
            confident = False
        self.learning = posture if confident else (self.learning if posture == self.learning else None)
        if confident and wearer is not None:
            wearer.add(posture, unit_g[i])
            self.since_learned = 0
        committed = np.zeros_like(b)
        committed[best] = 1.0
        self.frozen = True
        self.episode_max[:] = 0.0
        self.episode_walk = 0.0
        self.sit_after_walk = 0.0
        self.lowered_after_walk = 0.0
        return committed

    @staticmethod
    def _wearer_evidence(wearer: WearerModel, unit_g: np.ndarray, steady: np.ndarray, i0: int) -> np.ndarray:
        """The wearer's log evidence for sitting over standing on the steady steps from ``i0`` on."""
        out = np.zeros(len(unit_g) - i0)
        if wearer.ready() and len(out):
            sel = np.flatnonzero(steady[i0:])
            if len(sel):
                out[sel] = wearer.log_ratio(unit_g[i0:][sel])
        return out
