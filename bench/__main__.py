"""``make bench``: every measurement in one run, each printing its own table.

Each module is a plain script with ``main()``; they are run in a fixed order. A module that
needs something absent here (e.g. a broker) says so and the others still run.
"""

from __future__ import annotations

import importlib
import sys
import time

MODULES = (
    "bench.bench_edxml",  # parse, build, peek, XSD validation (lxml next to xmlschema)
    "bench.bench_crypto",  # XML signature, CMS, at-rest, next to RSA / SHA-256 / AES-GCM
    "bench.bench_pdf",  # PDF seal and verification next to their primitives
    "bench.bench_cost",  # CPU per standard document by stage, beside the crypto floor
    "bench.bench_memory",  # peak RSS per stage for a 20 MB attachment, as a multiple of it
    "bench.bench_pkcs11",  # seal and XML signature with a token key (SoftHSM2) next to a file key
    "bench.bench_hub",  # VXP client and emulator round trips
    "bench.bench_store",  # tracking store per document, SQLite and PostgreSQL; 1-3 replicas
    "bench.bench_amqp",  # the AMQP adapter next to plain kombu (needs RabbitMQ)
    "bench.bench_e2e",  # A -> hub -> B throughput and latency (needs RabbitMQ)
    "bench.bench_replicas",  # A as 1-3 replicas on PostgreSQL; the 1,000-record kill run
)


def main() -> int:
    failures = 0
    for name in MODULES:
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            print(f"(skipped: {exc})")
            continue
        saved = sys.argv
        sys.argv = [name]
        try:
            module.main()
        except SystemExit as exc:
            if exc.code not in (0, None):
                failures += 1
        except Exception as exc:  # one broken bench must not hide the others' tables
            print(f"(failed: {type(exc).__name__}: {exc})")
            failures += 1
        finally:
            sys.argv = saved
        print(f"({name} took {time.perf_counter() - started:.1f}s)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
