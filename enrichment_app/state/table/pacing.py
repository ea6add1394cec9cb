"""How often a tab with a filter or a sort reads its view again while its table changes."""

from __future__ import annotations

import math
from dataclasses import dataclass

VIEW_READ_SECONDS = 0.75
"""With a filter or a sort, the most often a tab reads its view again while changes keep coming.
Each read is a pass over the view (up to a second for 100k rows) and a big job changes the
table many times a second; meanwhile the window's cells are redrawn in place, and the last
change is always read (``ViewPace``)."""


@dataclass
class ViewPace:
    """When a tab may read its view again: at most once per ``VIEW_READ_SECONDS``, and once
    more when changes it put off (``owed``) stop coming, so nothing stale stays on the page."""

    last: float = -math.inf
    owed: bool = False

    def due(self, now: float) -> bool:
        return now - self.last >= VIEW_READ_SECONDS

    def wait(self, now: float, within: float) -> float:
        """How long to wait for news: ``within``, or less when a put-off read falls due sooner."""
        if not self.owed:
            return within
        return max(0.0, min(within, self.last + VIEW_READ_SECONDS - now))

    def read(self, now: float) -> None:
        self.last, self.owed = now, False

    def owe(self, now: float) -> bool:
        """Changes came that a read of the view would show: whether to read it now (then it
        counts as read), or it is put off until due."""
        self.owed = True
        return self.settle(now)

    def settle(self, now: float) -> bool:
        """Whether a put-off read is due now (then it counts as read)."""
        if self.owed and self.due(now):
            self.read(now)
            return True
        return False
