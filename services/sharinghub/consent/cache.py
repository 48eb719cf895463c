"""The consent stage's cache of each client's current directives.

Every consent process reads every directive event (see the materializer), so it can drop a
client's entry the moment one of their directives changes; a lookup that raced with such a
change is not stored. Bounded: the least recently used clients are dropped first.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Iterable

from sharinghub.contracts import ConsentDirective

Loader = Callable[[Iterable[str]], dict[str, list[ConsentDirective]]]


class DirectiveCache:
    def __init__(self, load: Loader, max_subjects: int = 5_000) -> None:
        self._load = load
        self._max = max_subjects
        self._entries: OrderedDict[str, list[ConsentDirective]] = OrderedDict()
        self._changes = 0  # bumped on every invalidation
        self.hits = 0
        self.misses = 0

    def invalidate(self, subject_ids: Iterable[str]) -> None:
        """Forget these clients (called when their directives change)."""
        self._changes += 1
        for subject in subject_ids:
            self._entries.pop(subject, None)

    async def get(self, subject_ids: Iterable[str]) -> dict[str, list[ConsentDirective]]:
        """Current directives of each client: cached, or read from the registry in a thread."""
        wanted = set(subject_ids)
        out = {s: self._entries[s] for s in wanted if s in self._entries}
        for s in out:
            self._entries.move_to_end(s)
        missing = wanted - out.keys()
        self.hits += len(out)
        self.misses += len(missing)
        if missing:
            changes_before = self._changes
            loaded = await asyncio.to_thread(self._load, missing)
            fresh = {s: loaded.get(s, []) for s in missing}
            out.update(fresh)
            if self._changes == changes_before:  # nothing changed while we read: keep it
                self._entries.update(fresh)
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
        return out
