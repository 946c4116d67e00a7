"""Partial credit inside one graded check.

A check declares that it may award a fraction next to its points,
``@pytest.mark.points(4, partial=True)``, and awards one by raising
:class:`PartialCredit` (or calling :func:`award`) after it has established
what the student got right, e.g. the right shape but values out of tolerance.
The check still shows as failed, with the fraction of its points and the
reason; a check without ``partial=True`` that raises it scores 0. Award
fractions only for work a lazy answer (zeros, constants, echoes) cannot do.
"""

from __future__ import annotations

import math


class PartialCredit(AssertionError):
    """The check failed but earns ``fraction`` (0 < fraction < 1) of its points; ``reason`` says for what."""

    def __init__(self, fraction, reason):
        fraction = float(fraction)
        if not (math.isfinite(fraction) and 0.0 < fraction < 1.0):
            raise ValueError(f"a partial credit fraction must be strictly between 0 and 1, got {fraction!r}")
        super().__init__(f"partial credit ({fraction:.0%} of the points): {reason}")
        self.fraction = fraction
        self.reason = str(reason)


def award(fraction, reason):
    """Fail the running check with ``fraction`` of its points (see :class:`PartialCredit`)."""
    raise PartialCredit(fraction, reason)
