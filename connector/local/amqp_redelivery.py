"""Which redeliveries are excused, and which count as a crash against the message.

RabbitMQ flags every message it delivers again (``redelivered``) without saying why. The
consumer excuses the ones its own process explains: messages it released, messages it
held when its connection dropped, and (for a short while after reconnecting) up to
"prefetch minus held" more per queue, which the broker had sent but never reached us.
Any other redelivery was in flight when a connector process died, and is *suspect*. The
memory is per process and bounded. Not thread-safe: the consumer calls it under its lock.
This module must not touch the broker.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable, Mapping

EXCUSED_MEMORY = 10_000  # fingerprints remembered as "redelivered through no fault of theirs"
AMNESTY_SECONDS = 30.0  # redeliveries after a reconnect arrive at once (queue head)


class RedeliveryExcuses:
    def __init__(self, *, clock: collections.abc.Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._excused: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._amnesty: dict[str, int] = {}
        self._amnesty_until = 0.0

    def excuse(self, fingerprint: str) -> None:
        """The next redelivery of this message is ours to explain (release, lost link)."""
        self._excused[fingerprint] = None
        self._excused.move_to_end(fingerprint)
        while len(self._excused) > EXCUSED_MEMORY:
            self._excused.popitem(last=False)

    def connection_lost(self, held: Iterable[tuple[str, str]], limits: Mapping[str, int]) -> None:
        """``held``: (queue, fingerprint) unsettled on the lost connection; ``limits``: the
        prefetch of each queue's consumer (the most the broker can have had in flight)."""
        counts: collections.Counter[str] = collections.Counter()
        for queue, fingerprint in held:
            self.excuse(fingerprint)
            counts[queue] += 1
        self._amnesty = {queue: max(0, limit - counts[queue]) for queue, limit in limits.items()}

    def connected(self) -> None:
        """A new connection consumes: the amnesty for unseen in-flight messages starts."""
        self._amnesty_until = self._clock() + AMNESTY_SECONDS

    def is_excused(self, queue: str, fingerprint: str) -> bool:
        """Whether a redelivery is explained (consumes the excuse)."""
        if fingerprint in self._excused:
            del self._excused[fingerprint]
            return True
        if self._amnesty.get(queue, 0) > 0 and self._clock() < self._amnesty_until:
            self._amnesty[queue] -= 1
            return True
        return False
