"""The progress bar draws on a terminal only, and only once work has taken a while."""

from __future__ import annotations

import io

from sitsense.progress import Progress


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
