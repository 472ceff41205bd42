"""Commands arriving on ``cmd/<name>``: validated, rate-limited, submitted as Requests, each answered.

Apart from the client because it changes with the command protocol (what is accepted, how a
refusal is answered, what ``last_command`` holds), not with the connection. It runs in paho's
thread and only enqueues: ``submit`` hands a :class:`~sitsense.control.Request` to the service,
whose loop later calls the request's ``reply``. Every message in this device's command tree gets an
answer on ``cmd/<name>/result`` (a refused one ``{"ok": false, "error": ...}``, as long as refusals
come at a sane rate); the latest answer stays retained on ``last_command``.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any, Callable

from ..control import CONTROLS, Request, RequestRejected, Submit
from .inbound import COMMAND_BURST, COMMAND_REFILL_S, REFUSAL_BURST, REFUSAL_REFILL_S, LogOnce, RateLimiter
from .topics import Topics, encode, last_command_payload, parse_command

log = logging.getLogger(__name__)

# Messages published together at QoS 1: (topic, payload, retain) each; the client drops them once closed.
PublishReplies = Callable[[list[tuple[str, bytes, bool]]], None]
Report = Callable[..., None]  # report(key, msg, *args): an unexpected failure, logged once per key


class RequestIntake:
    """Turns ``cmd/<name>`` messages into Requests for ``submit`` (None: every command is refused).

    ``publish`` sends the answers; ``now_iso`` gives the wall time an answer is stamped with;
    ``stats`` is the client's counter (``commands``, ``rejected``, ``rate_limited``,
    ``refusals_unanswered``). Refusals are logged as WARNING the first time for each of a bounded
    set of keys, then at DEBUG, so whatever others send cannot flood or silence the log.
    """

    def __init__(self, topics: Topics, *, submit: Submit | None, publish: PublishReplies,
                 now_iso: Callable[[], str], stats: collections.Counter[str], report: Report):
        self.topics = topics
        self._submit = submit
        self._publish = publish
        self._now_iso = now_iso
        self._report = report
        self.stats = stats
        self._rejections_logged = LogOnce()
        self._command_limit = RateLimiter(COMMAND_BURST, COMMAND_REFILL_S)
        self._refusal_limit = RateLimiter(REFUSAL_BURST, REFUSAL_REFILL_S)

    def receive(self, topic: str, payload: bytes, *, retained: bool) -> None:
        """One incoming message: refused and answered, or submitted as a Request."""
        named = self.topics.cmd_name(topic)  # None: not in our command tree, nobody to answer
        known = named if named in CONTROLS else None
        try:
            name, args = parse_command(self.topics, topic, payload, retained=retained)
        except RequestRejected as exc:
            self.stats["rejected"] += 1
            # each distinct problem of a known command once; unknown names and foreign topics once in all
            key = f"reject:{str(exc)[:80]}" if known else f"reject:{'unknown' if named is not None else 'outside'}"
            self._log_rejection(key, "MQTT: ignored: %s", exc)
            if named is not None:
                self._refuse(named, str(exc))
            return
        if not self._command_limit.allow(name, time.monotonic()):
            # before the service sees it: a flood of valid commands must not take the loop's time
            self.stats["rate_limited"] += 1
            self._log_rejection(f"ratelimit:{name}", "MQTT: %s: more than %d commands at once (then one per "
                                "%g s); ignoring the rest", name, COMMAND_BURST, COMMAND_REFILL_S)
            self._refuse(name, f"{name}: too many commands (at most {COMMAND_BURST} at once, then one "
                               f"per {COMMAND_REFILL_S:g} s); ignored")
            return
        self.stats["commands"] += 1
        log.info("MQTT: command %s %s", name, args)
        request = Request(name=name, args=args, source="mqtt", reply=self.replier(name))
        if self._submit is None:
            self.replier(name)({"ok": False, "error": "this sitsense does not take commands"})
            return
        try:
            self._submit(request)
        except Exception as exc:
            log.error("MQTT: command %s could not be submitted: %s", name, exc)
            self.replier(name)({"ok": False, "error": f"not accepted: {exc}"})

    def replier(self, name: str) -> Callable[[dict[str, Any]], None]:
        """The answer to one command of ``name``: its result topic, and ``last_command`` (retained)."""
        topic = self.topics.cmd_result(name)

        def reply(result: dict[str, Any]) -> None:
            """Publish a command's result; safe from any thread, never raises."""
            try:
                body = result if isinstance(result, dict) else {"result": result}
                body = {"command": name, **body}
                last = last_command_payload(body, time_iso=self._now_iso())
                self._publish([(topic, encode(body), False), (self.topics.last_command, encode(last), True)])
            except Exception as exc:
                self._report(f"reply:{type(exc).__name__}", "MQTT: reply to %s: %s", name, exc)

        return reply

    def _refuse(self, name: str, error: str) -> None:
        """Answer a refused command, as long as refusals come at a sane rate (each answer is a publish)."""
        if self._refusal_limit.allow("refusals", time.monotonic()):
            self.replier(name)({"ok": False, "error": error})
        else:
            self.stats["refusals_unanswered"] += 1

    def _log_rejection(self, key: str, msg: str, *args: Any) -> None:
        """Log a refused incoming message: WARNING the first time of each of a bounded set of keys."""
        if self._rejections_logged.first(key):
            log.warning(msg, *args)
        else:
            log.debug(msg, *args)
