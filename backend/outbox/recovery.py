"""Resume outbox work promptly when a dependency answers again, instead of waiting out the back-off.

Retries back off up to ten minutes, so without this a long chain outage delayed anchoring by up
to ten minutes after the chain came back. Each dependency (the database, the chain) has a cheap
probe that returns a progress marker (or raises when it does not answer); when the marker
changes — the dependency answers again, or makes progress such as a new final checkpoint —
the back-off of every event waiting on it is reset so the next outbox round runs them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from backend.outbox import service as outbox

log = logging.getLogger("zhilian.outbox")

PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Dependency:
    """Something outbox handlers need; `kinds` None means every kind."""

    probe: Callable[[], Awaitable[Any]]  # a marker of its state; raises (or times out) when it does not answer
    kinds: frozenset[str] | None = None


class DependencyWatch:
    """The last marker seen per dependency; `None` while it does not answer."""

    def __init__(self) -> None:
        self.markers: dict[str, Any] = {}

    async def check(self, dependencies: dict[str, Dependency], handled_kinds: Iterable[str]) -> dict[str, int]:
        """Probe each dependency; where it answers with a new marker, make its events due now."""
        handled = frozenset(handled_kinds)
        resumed: dict[str, int] = {}
        for name, dependency in list(dependencies.items()):
            try:
                marker = await asyncio.wait_for(dependency.probe(), PROBE_TIMEOUT_S)
            except Exception:  # not answering: remember that, so its return counts as a change
                if self.markers.get(name) is not None:
                    log.warning("dependency not answering", extra={"dependency": name})
                self.markers[name] = None
                continue
            if name in self.markers and self.markers[name] == marker:
                continue
            kinds = handled if dependency.kinds is None else dependency.kinds & handled
            resumed[name] = await outbox.retry_now(kinds) if kinds else 0
            if resumed[name]:
                log.info("dependency answers: retrying now", extra={"dependency": name, "events": resumed[name]})
            self.markers[name] = marker
        return resumed
