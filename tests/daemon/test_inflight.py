"""The in-flight window: bounded, most urgent first, one key at a time, settled by its owner."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from functools import partial

import pytest

from connector.daemon.inflight import Doorbell, InflightWindow


def _settle_all(window: InflightWindow, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while window.in_flight:
        assert time.monotonic() < deadline, "jobs did not finish"
        window.settle(0.1)


@pytest.mark.parametrize("size", [1, 2, 4])
def test_urgent_jobs_start_first_and_outcomes_settle_in_the_owner_thread(size: int) -> None:
    window = InflightWindow(size, "test")
    gate = threading.Event()
    started: list[str] = []
    settled: list[tuple[str, str, str]] = []
    owner = threading.current_thread().name

    entered = threading.Semaphore(0)

    def job(name: str) -> str:
        entered.release()
        gate.wait(10)
        started.append(name)
        if name == "bad":
            raise ValueError(name)
        return name

    def settle(name: str, future: Future[str]) -> None:
        outcome = repr(future.exception()) if future.exception() else future.result()
        settled.append((name, outcome, threading.current_thread().name))

    # The first `size` jobs take every thread; the rest queue and start by priority.
    for index in range(size):
        window.submit(0, partial(job, f"busy{index}"), partial(settle, f"busy{index}"))
    for _ in range(size):
        assert entered.acquire(timeout=10)
    for name, priority in [("low", 0), ("bad", 1), ("urgent", 3), ("mid", 2)]:
        window.submit(priority, partial(job, name), partial(settle, name))
    assert window.room() == 0
    gate.set()
    _settle_all(window)
    queued = [n for n in started if not n.startswith("busy")]
    if size == 1:
        assert queued == ["urgent", "mid", "bad", "low"]
    assert {n for n, _, _ in settled} == {*(f"busy{i}" for i in range(size)), "low", "bad",
                                          "urgent", "mid"}
    assert all(thread == owner for _, _, thread in settled)
    assert ("bad", repr(ValueError("bad")), owner) in settled
    assert window.room() == size
    window.close()


def test_jobs_of_one_key_run_one_at_a_time_in_submission_order() -> None:
    window = InflightWindow(4, "test")
    running: set[str] = set()
    overlaps: list[str] = []
    order: list[str] = []
    lock = threading.Lock()

    def job(key: str, name: str) -> None:
        with lock:
            if key in running:
                overlaps.append(name)
            running.add(key)
        time.sleep(0.02)
        with lock:
            running.discard(key)
            order.append(name)

    settled: list[str] = []

    def note(name: str, _future: Future[None]) -> None:
        settled.append(name)

    # A later, more urgent status of the same document still waits for the earlier one.
    for name, key, priority in [("03", "doc", 0), ("05", "doc", 3), ("x", "other", 0),
                                ("06", "doc", 1)]:
        window.submit(priority, partial(job, key, name), partial(note, name), key=key)
    _settle_all(window)
    assert not overlaps
    assert [n for n in order if n != "x"] == ["03", "05", "06"]
    assert [n for n in settled if n != "x"] == ["03", "05", "06"]
    window.close()


def test_a_shared_doorbell_ends_the_owner_wait_at_once() -> None:
    bell = Doorbell()
    window = InflightWindow(2, "test", bell)
    threading.Timer(0.05, bell.ring).start()
    started = time.monotonic()
    assert window.settle(5.0) == 0
    assert time.monotonic() - started < 2.0
    window.close()


def test_an_empty_window_is_refused() -> None:
    with pytest.raises(ValueError, match="room for one job"):
        InflightWindow(0)
