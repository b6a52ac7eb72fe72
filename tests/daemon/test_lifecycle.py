"""Bounded graceful shutdown, forced exit on a second signal, loud death of a worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from connector.daemon.lifecycle import Supervisor


def test_workers_stop_and_exit_zero() -> None:
    supervisor = Supervisor(shutdown_timeout=5)
    finished = []

    def loop(stop: threading.Event) -> None:
        while not stop.wait(0.01):
            pass
        finished.append(True)

    supervisor.add("a", loop)
    supervisor.add("b", loop)
    threading.Timer(0.2, supervisor.stop.set).start()
    assert supervisor.run(install_signals=False) == 0
    assert finished == [True, True]


def test_dying_worker_takes_process_down_with_status_1() -> None:
    supervisor = Supervisor(shutdown_timeout=2)

    def broken(stop: threading.Event) -> None:
        raise RuntimeError("boom")

    supervisor.add("healthy", lambda stop: stop.wait())
    supervisor.add("broken", broken)
    assert supervisor.run(install_signals=False) == 1


def test_stuck_worker_is_abandoned_after_timeout() -> None:
    supervisor = Supervisor(shutdown_timeout=0.3)
    supervisor.add("stuck", lambda stop: time.sleep(30))
    threading.Timer(0.1, supervisor.stop.set).start()
    started = time.monotonic()
    assert supervisor.run(install_signals=False) == 0
    assert time.monotonic() - started < 5


SCRIPT = textwrap.dedent(
    """
    import sys, threading, time
    from connector.daemon.lifecycle import Supervisor
    sup = Supervisor(shutdown_timeout=float(sys.argv[1]))
    def slow(stop):
        stop.wait()
        time.sleep(float(sys.argv[2]))
    sup.add("slow", slow)
    sup.install_signal_handlers()
    print("ready", flush=True)
    sys.exit(sup.run(install_signals=False))
    """
)


def _start(tmp_path: Path, timeout: float, linger: float) -> subprocess.Popen[str]:
    script = tmp_path / "daemon.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    process = subprocess.Popen(
        [sys.executable, str(script), str(timeout), str(linger)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def test_sigterm_graceful_exit_zero(tmp_path: Path) -> None:
    process = _start(tmp_path, timeout=5, linger=0.2)
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0


def test_second_sigint_forces_exit(tmp_path: Path) -> None:
    process = _start(tmp_path, timeout=60, linger=60)
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    assert process.wait(10) == 130
