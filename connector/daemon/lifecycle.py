"""Process lifecycle: worker threads, signals, and a bounded graceful shutdown.

* SIGTERM or SIGINT: stop taking new work; workers finish or abandon (safely: every stage is
  idempotent and only acknowledged after durable hand-off) within ``shutdown_timeout``; exit 0.
* A second SIGINT/SIGTERM: exit at once (code 130), abandoning in-flight work.
* A worker that dies with an exception takes the process down loudly (exit 1) rather than
  leaving a half-working daemon behind.

Workers are plain functions ``loop(stop: threading.Event) -> None`` that return when ``stop``
is set. This module knows nothing of documents.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger("connector.lifecycle")

WorkerLoop = Callable[[threading.Event], None]


@dataclass
class Worker:
    name: str
    loop: WorkerLoop
    thread: threading.Thread | None = None
    error: BaseException | None = None


@dataclass
class Supervisor:
    shutdown_timeout: float = 30.0
    workers: list[Worker] = field(default_factory=list)
    on_stop: list[Callable[[], None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _signals: int = 0
    _died: threading.Event = field(default_factory=threading.Event)

    def add(self, name: str, loop: WorkerLoop) -> None:
        self.workers.append(Worker(name, loop))

    def workers_alive(self) -> dict[str, bool]:
        """Worker name -> its thread is running (the liveness probe's view)."""
        return {w.name: w.thread is not None and w.thread.is_alive() for w in self.workers}

    def _run_worker(self, worker: Worker) -> None:
        try:
            worker.loop(self.stop)
        except BaseException as exc:  # a dying worker must be seen, whatever killed it
            worker.error = exc
            log.critical("worker %s died: %s\n%s", worker.name, exc, traceback.format_exc())
            self._died.set()
            self.stop.set()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals == 1:
            log.warning(
                "%s received: stopping intake, finishing in-flight work (up to %.0fs)",
                signal.Signals(signum).name,
                self.shutdown_timeout,
            )
            self.stop.set()
        else:
            log.error(
                "second signal: exiting now, in-flight work is abandoned (it is retried "
                "at the next start)"
            )
            os._exit(130)

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def start(self) -> None:
        for worker in self.workers:
            worker.thread = threading.Thread(
                target=self._run_worker, args=(worker,), name=worker.name, daemon=True
            )
            worker.thread.start()

    def run(self, *, install_signals: bool = True) -> int:
        """Start the workers and block until stopped; return the process exit code."""
        if install_signals:
            self.install_signal_handlers()
        self.start()
        while not self.stop.wait(0.2):
            pass
        return self.shutdown()

    def shutdown(self) -> int:
        self.stop.set()
        deadline = time.monotonic() + self.shutdown_timeout
        for worker in self.workers:
            if worker.thread is None:
                continue
            worker.thread.join(max(deadline - time.monotonic(), 0.0))
            if worker.thread.is_alive():
                log.warning(
                    "worker %s did not finish within the shutdown timeout: abandoned", worker.name
                )
        for callback in self.on_stop:
            try:
                callback()
            except Exception as exc:  # closing one resource must not hide the others
                log.warning("error while stopping: %s", exc)
        if self._died.is_set():
            names = ", ".join(w.name for w in self.workers if w.error is not None)
            log.critical("exiting with status 1: worker(s) died: %s", names)
            return 1
        return 0


def pool_process_started(parent_pid: int, interval: float = 1.0) -> None:
    """Initializer of the worker pool's processes: they follow the daemon, never outlive it.

    SIGINT (a Ctrl-C to the process group) is left to the daemon, which stops the pool itself;
    and a watcher ends the process once its parent is gone (kill -9 of the daemon), instead of
    leaving an orphan that holds resources of a connector that is being restarted.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from connector.logsetup import quiet_known_warnings

    quiet_known_warnings()  # spawned: the parent's warning filters are not inherited

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def sleep_until(stop: threading.Event, seconds: float) -> bool:
    """Sleep up to ``seconds`` unless stopping; True if the daemon is stopping."""
    return stop.wait(max(seconds, 0.0))
