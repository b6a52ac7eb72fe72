"""A bounded in-flight window: up to ``size`` jobs at once, the most urgent first.

Each pipeline worker (intake, sender, inbound) owns one window. It submits the slow part of
handling one item as a job (``submit(priority, job, settle)``: preparing a record, sending a
package, checking a received package); ``size`` threads run the jobs, most urgent first (then
in submission order), and the CPU-heavy stages inside them go on to the worker pool, so the
pool's processes are all busy while several documents are in flight. The owner takes new
items only while the window has room (``room``), and calls ``settle`` in its own thread:
each finished job's ``settle`` callback runs there, in completion order, so acknowledging a
local record or updating the store stays on the thread that owns those resources.

``settle`` returns as soon as a job finishes or someone calls ``wake`` (new work arrived in
this process): workers wait on a condition, not on a sleep interval.

This module knows nothing of documents, the store or the hub; it must not settle anything
itself (a job's outcome is only its ``settle`` callback's business).
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

log = logging.getLogger("connector.inflight")

T = TypeVar("T")
Settle = Callable[["Future[T]"], None]


class Doorbell:
    """A wake-up shared by a window and whoever brings its owner new work (another worker)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.rung = False

    def ring(self) -> None:
        with self.cond:
            self.rung = True
            self.cond.notify_all()


@dataclass(order=True)
class _Queued(Generic[T]):
    rank: tuple[int, int]
    key: str | None = field(compare=False)
    job: Callable[[], T] = field(compare=False)
    settle: Settle[T] = field(compare=False)
    future: Future[T] = field(compare=False)


class InflightWindow:
    """Jobs run by ``size`` threads, highest ``priority`` first; outcomes settled by the owner."""

    def __init__(self, size: int, name: str = "inflight", bell: Doorbell | None = None) -> None:
        if size < 1:
            raise ValueError(f"an in-flight window needs room for one job at least, got {size}")
        self.size = size
        self.name = name
        self._bell = bell or Doorbell()
        self._cond = self._bell.cond
        self._queued: list[_Queued[Any]] = []
        self._finished: collections.deque[_Queued[Any]] = collections.deque()
        self._running = 0
        self._keys: set[str] = set()  # keys of the jobs running
        self._closed = False
        self._order = itertools.count()
        self._threads: list[threading.Thread] = []

    # ---- the owner's side --------------------------------------------------------------
    def submit(
        self, priority: int, job: Callable[[], T], settle: Settle[T], key: str | None = None
    ) -> Future[T]:
        """Queue ``job``; ``settle(future)`` runs in the owner's thread once it finished.
        Jobs of one ``key`` (the statuses of one document) run one after the other, in the
        order submitted, whatever their priority, and so are settled in that order."""
        future: Future[T] = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError(f"{self.name}: window closed")
            heapq.heappush(
                self._queued, _Queued((-priority, next(self._order)), key, job, settle, future)
            )
            if len(self._threads) < self.size:
                self._start_thread()
            self._cond.notify_all()
        return future

    @property
    def in_flight(self) -> int:
        """Jobs queued, running, or finished but not settled yet."""
        with self._cond:
            return len(self._queued) + self._running + len(self._finished)

    def room(self) -> int:
        """How many more items the owner may take now."""
        return max(self.size - self.in_flight, 0)

    def wake(self) -> None:
        """Make a waiting ``settle`` return now (new work for the owner, or stopping)."""
        self._bell.ring()

    def settle(self, timeout: float) -> int:
        """Wait up to ``timeout`` for a finished job (or ``wake``); settle every finished
        job in this thread; return how many were settled."""
        with self._cond:
            if not self._finished and not self._bell.rung and timeout > 0:
                self._cond.wait_for(lambda: bool(self._finished) or self._bell.rung, timeout)
            self._bell.rung = False
            finished = list(self._finished)
            self._finished.clear()
        for item in finished:
            try:
                item.settle(item.future)
            except Exception:  # one item's settlement must not stop the others
                log.exception("%s: settling a finished job failed", self.name)
        return len(finished)

    def drain(self, timeout: float) -> None:
        """Settle everything in flight, waiting up to ``timeout`` in all (shutdown)."""
        deadline = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < deadline:
            self.settle(min(0.2, max(deadline - time.monotonic(), 0.0)))

    def close(self) -> list[Callable[[], Any]]:
        """Stop the threads; return the jobs never started (their items are not settled)."""
        with self._cond:
            self._closed = True
            dropped = [queued.job for queued in self._queued]
            for queued in self._queued:
                queued.future.cancel()
            self._queued.clear()
            self._cond.notify_all()
        return dropped

    # ---- the runners -------------------------------------------------------------------
    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._run, name=f"{self.name}-{len(self._threads) + 1}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _eligible(self) -> _Queued[Any] | None:
        """The most urgent queued job whose key is free (the oldest of its key)."""
        if not self._keys and all(q.key is None for q in self._queued):
            return self._queued[0] if self._queued else None
        first_of_key: dict[str, int] = {}
        for queued in self._queued:
            if queued.key is not None:
                seq = queued.rank[1]
                first_of_key[queued.key] = min(first_of_key.get(queued.key, seq), seq)
        for queued in sorted(self._queued):
            key = queued.key
            if key is None or (key not in self._keys and first_of_key[key] == queued.rank[1]):
                return queued
        return None

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._eligible() is not None or self._closed)
                if self._closed:
                    return
                item = self._eligible()
                assert item is not None
                self._queued.remove(item)
                heapq.heapify(self._queued)
                self._running += 1
                if item.key is not None:
                    self._keys.add(item.key)
            if item.future.set_running_or_notify_cancel():
                try:
                    item.future.set_result(item.job())
                except BaseException as exc:  # the owner's settle decides its fate
                    item.future.set_exception(exc)
            with self._cond:
                self._running -= 1
                self._keys.discard(item.key or "")
                self._finished.append(item)
                self._cond.notify_all()
