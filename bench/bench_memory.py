"""Benchmark: peak memory for a record with one large PDF attachment, per stage.

A record of agency A names a small signed main PDF (inline) and one large PDF attachment
(``--megabytes``, 20 by default) as a claim-check file in A's spool folder. Each
measurement runs in a fresh subprocess, built as ``connector run`` builds the agency
(``wiring.build`` on the shipped configuration, the demo PKI, the pool run inline so all
memory is this process's), warmed up with a small document, then brought to its idle
baseline (``gc.collect`` and ``malloc_trim``):

- outbound: ``outbound.prepare`` (map → pdf_seal → encrypt → build → validate → xml_sign),
  the signed package written to a file for the inbound measurement;
- inbound: the package read from that file (``fetch``), ``inbound.authenticate``
  (xml_verify → validate → decrypt → pdf_verify), then ``map_back`` and ``deliver`` to
  B's local side (the spool folder).

Per stage, two figures above the idle baseline: peak RSS (Linux ``VmHWM``, reset at every
stage boundary through ``/proc/self/clear_refs``, so it includes C allocations of lxml,
OpenSSL, zlib) and the peak of Python allocations (``tracemalloc``, in a second subprocess:
tracing changes the RSS). Both are shown as multiples of the attachment's size beside the
target (2×). "glue" is everything between the daemon's own stages. Asserts nothing.

    .venv/bin/python -m bench.bench_memory [--megabytes 20]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

TARGET = 2.0
OUTBOUND_STAGES = ("map", "pdf_seal", "encrypt", "build", "validate", "xml_sign", "glue")
INBOUND_STAGES = ("fetch", "xml_verify", "validate", "decrypt", "pdf_verify", "map_back",
                  "deliver", "glue")
ATTACHMENT_NAME = "big-attachment.pdf"


# ----------------------------------------------------------------------------- meters
def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
        clear.write("5")  # resets VmHWM to the current RSS (Linux ≥ 4.0)


def _trim() -> None:
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class Meter:
    """Peak bytes above the idle baseline per stage; stages nest (build contains validate),
    and the time outside every stage is "glue"."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.peaks: dict[str, int] = {}
        self.stack = ["glue"]
        self.baseline = 0

    def _current(self) -> int:
        if self.mode == "rss":
            return _status_kib("VmRSS") * 1024
        return tracemalloc.get_traced_memory()[0]

    def _peak(self) -> int:
        if self.mode == "rss":
            return _status_kib("VmHWM") * 1024
        return tracemalloc.get_traced_memory()[1]

    def _reset(self) -> None:
        if self.mode == "rss":
            _reset_peak_rss()
        else:
            tracemalloc.reset_peak()

    def start(self) -> None:
        _trim()
        if self.mode == "trace":
            tracemalloc.start()
        self.baseline = self._current()
        self._reset()

    def _close_segment(self) -> None:
        name = self.stack[-1]
        self.peaks[name] = max(self.peaks.get(name, 0), self._peak() - self.baseline)
        self._reset()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._close_segment()
        self.stack.append(name)
        try:
            yield
        finally:
            self._close_segment()
            self.stack.pop()

    def timed(self, _services: object, stage: str) -> contextlib.AbstractContextManager[None]:
        return self.stage(stage)

    def finish(self) -> dict[str, int]:
        self._close_segment()
        if self.mode == "trace":
            tracemalloc.stop()
        return dict(self.peaks)


@contextlib.contextmanager
def metered(meter: Meter) -> Iterator[None]:
    """The pipelines' ``timed`` blocks measured; ``validate`` split out of outbound ``build``."""
    from connector.daemon import inbound, outbound

    saved = [(module, "timed", module.timed) for module in (outbound, inbound)]
    original_validate = getattr(outbound, "validate_package")  # noqa: B009 - not exported
    saved.append((outbound, "validate_package", original_validate))

    def validate(raw: bytes) -> Any:
        with meter.stage("validate"):
            return original_validate(raw)

    for module in (outbound, inbound):
        setattr(module, "timed", meter.timed)  # noqa: B010 - restored below
    setattr(outbound, "validate_package", validate)  # noqa: B010
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


# ----------------------------------------------------------------------------- child
def _world(work: Path, child: str) -> Any:
    from tests.e2e.harness import World

    with (work / "pki.pickle").open("rb") as handle:
        pki = pickle.load(handle)  # written by this bench's parent process
    world = World(work / child, pki, os.environ.__setitem__)
    world.env["CONNECTOR_HUB_URL"] = "http://127.0.0.1:9"  # never called
    return world


def _services(world: Any, which: str) -> Any:
    from bench.bench_cost import InlineExecutor
    from connector.config import load_config
    from connector.daemon import wiring
    from tests.e2e.inprocess import IN_PROCESS

    agency = world.a if which == "A" else world.b
    config = load_config(world.derive(agency, IN_PROCESS), environ=world.env)
    built = wiring.build(config, start_metrics=False)
    built.services.pool.shutdown(wait=False)
    built.services.pool = InlineExecutor()
    built.services.pool_factory = None
    return built.services, config


def _records(world: Any, spool: Path, work: Path) -> tuple[Any, Any]:
    from bench.bench_e2e import _pdf_of
    from connector.local.base import LocalRecord
    from connector.trust.pdf_seal import sign_pdf
    from tests.e2e_amqp.harness import RecordFactory

    main = sign_pdf(_pdf_of(20 * 1024, "Memory bench"), world.signer)
    factory = RecordFactory("memory", main)
    shutil.copyfile(work / ATTACHMENT_NAME, spool / ATTACHMENT_NAME)
    (spool / "small.pdf").write_bytes(_pdf_of(50 * 1024, "Warm-up attachment"))

    def record(index: int, file: str) -> LocalRecord:
        body = factory.make(index, tep_dinh_kem=[{
            "ten_tep": file, "loai_tep": "application/pdf", "mo_ta": "Phụ lục", "tep_spool": file,
        }]).body
        return LocalRecord(record_id=f"memory-{index}", body=body,
                           content_type="application/json", mapping=None, source="bench")

    return record(1, "small.pdf"), record(2, ATTACHMENT_NAME)


def child_outbound(work: Path, mode: str) -> dict[str, int]:
    from connector.daemon import outbound

    world = _world(work, f"out-{mode}")
    services, config = _services(world, "A")
    small, big = _records(world, config.local.spool.root, work)
    raw, _facts, _kind = outbound.prepare(services, small)  # warm-up
    (work / f"small-{mode}.xml").write_bytes(raw)
    del raw
    meter = Meter(mode)
    with metered(meter):
        meter.start()
        raw, _facts, _kind = outbound.prepare(services, big)
        peaks = meter.finish()
    (work / "package.xml").write_bytes(raw)
    return peaks


def child_inbound(work: Path, mode: str) -> dict[str, int]:
    from connector.daemon import inbound
    from connector.edxml.model import EdocPackage

    world = _world(work, f"in-{mode}")
    services, _config = _services(world, "B")

    def receive(path: Path, meter: Meter | None, delivery_id: str) -> None:
        stage = meter.stage if meter is not None else (lambda _n: contextlib.nullcontext())
        with stage("fetch"):
            raw = path.read_bytes()
        received = inbound.authenticate(services, raw)
        del raw
        assert isinstance(received.package, EdocPackage)
        with stage("map_back"):
            delivery = services.mapper.package_to_delivery(received.package, delivery_id)
        del received
        with stage("deliver"):
            services.sink.deliver(delivery)

    with metered(Meter(mode)):
        receive(work / f"small-{mode}.xml", None, "warm-up")
    meter = Meter(mode)
    with metered(meter):
        meter.start()
        receive(work / "package.xml", meter, "memory-bench")
        return meter.finish()


# ----------------------------------------------------------------------------- parent
def _run_child(work: Path, direction: str, mode: str) -> dict[str, int]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    command = [sys.executable, "-m", "bench.bench_memory", "--child", direction,
               "--mode", mode, "--work", str(work)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{direction}/{mode} child failed:\n{done.stderr[-3000:]}")
    peaks: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return peaks


def _table(title: str, stages: tuple[str, ...], rss: dict[str, int], trace: dict[str, int],
           payload: int) -> None:
    mib = 1024 * 1024
    print(f"\n{title:28}{'RSS MiB':>9}{'× payload':>11}{'Python MiB':>12}{'× payload':>11}"
          f"{'target':>8}")
    print("-" * 79)
    for stage in stages:
        if stage not in rss and stage not in trace:
            continue
        r, t = rss.get(stage, 0), trace.get(stage, 0)
        mark = "" if r <= TARGET * payload else "  over"
        print(f"  {stage:26}{r / mib:9.1f}{r / payload:10.2f}×{t / mib:12.1f}"
              f"{t / payload:10.2f}×{TARGET:7.1f}×{mark}")
    worst = max(rss.values())
    verdict = "met" if worst <= TARGET * payload else "NOT met"
    print(f"  {'peak of the path':26}{worst / mib:9.1f}{worst / payload:10.2f}×"
          f"{max(trace.values()) / mib:12.1f}{max(trace.values()) / payload:10.2f}×"
          f"{TARGET:7.1f}×  {verdict}")


def run(args: argparse.Namespace) -> int:
    from bench.bench_e2e import _pdf_of
    from connector.trust.pki import create_demo_pki

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        pki = create_demo_pki(work / "pki")
        with (work / "pki.pickle").open("wb") as handle:
            pickle.dump(pki, handle)
        attachment = _pdf_of(int(args.megabytes * 1024 * 1024), "Large attachment")
        payload = len(attachment)
        (work / ATTACHMENT_NAME).write_bytes(attachment)
        del attachment
        print(f"  one PDF attachment of {payload / 1024 / 1024:.1f} MiB ({payload} B) as a "
              "claim-check file, small signed main PDF; peaks above the idle baseline, each "
              "measurement in a fresh process")
        results: dict[tuple[str, str], dict[str, int]] = {}
        for direction in ("outbound", "inbound"):
            for mode in ("rss", "trace"):
                started = time.perf_counter()
                results[direction, mode] = _run_child(work, direction, mode)
                print(f"  ({direction}/{mode}: {time.perf_counter() - started:.1f}s)",
                      flush=True)
        package = (work / "package.xml").stat().st_size
        print(f"  signed package: {package / 1024 / 1024:.1f} MiB")
    _table("outbound prepare (A)", OUTBOUND_STAGES, results["outbound", "rss"],
           results["outbound", "trace"], payload)
    _table("inbound receive (B)", INBOUND_STAGES, results["inbound", "rss"],
           results["inbound", "trace"], payload)
    return 0


def child(args: argparse.Namespace) -> int:
    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    logging.getLogger("connector").setLevel(logging.ERROR)
    work = Path(args.work)
    action: Callable[[Path, str], dict[str, int]] = (
        child_outbound if args.child == "outbound" else child_inbound)
    peaks = action(work, args.mode)
    print(json.dumps(peaks))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--megabytes", type=float, default=20.0, help="attachment size (MiB)")
    parser.add_argument("--child", choices=("outbound", "inbound"), help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("rss", "trace"), default="rss", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    return child(args) if args.child else run(args)


if __name__ == "__main__":
    raise SystemExit(main())
