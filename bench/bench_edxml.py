"""Benchmark: edXML parse, build, peek and XSD validation (lxml next to xmlschema).

For a metadata-only package and packages carrying a 1 MB and a 10 MB attachment: the tolerant
parse into the model, the receive-level check (parse plus every warning), the strict build, the routing peek, and strict validation with lxml
(compiled once) next to xmlschema on the same bytes. Prints medians and ratios; asserts
nothing.

    .venv/bin/python -m bench.bench_edxml [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import xmlschema

from connector.edxml import build_package, check_package, parse_package, peek, validate_package
from connector.edxml.model import Attachment
from connector.edxml.schema import schema_dir
from tests.edxml.factories import edoc


def _median_ms(action: Callable[[], object], repeat: int) -> float:
    action()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _row(label: str, size: int, repeat: int, xsd: xmlschema.XMLSchema10) -> None:
    attachments = (Attachment("1", "main.pdf", "application/pdf", os.urandom(size)),) if size \
        else ()
    package = edoc(attachments=attachments)
    data = build_package(package)
    parse_ms = _median_ms(lambda: parse_package(data), repeat)
    receive_ms = _median_ms(lambda: check_package(data), repeat)
    build_ms = _median_ms(lambda: build_package(package), repeat)
    peek_ms = _median_ms(lambda: peek(data), repeat)
    lxml_ms = _median_ms(lambda: validate_package(data), repeat)
    xs_ms = _median_ms(lambda: xsd.is_valid(data.decode("utf-8")), max(2, repeat // 2))
    print(f"{label:<22} {len(data):>10} {parse_ms:>9.2f} {receive_ms:>9.2f} {build_ms:>9.2f} "
          f"{peek_ms:>9.2f} "
          f"{lxml_ms:>9.2f} {xs_ms:>10.2f} {xs_ms / lxml_ms:>6.0f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    xsd = xmlschema.XMLSchema10(str(schema_dir() / "edoc.xsd"))
    print(f"{'package':<22} {'bytes':>10} {'parse':>9} {'receive':>9} {'build':>9} {'peek':>9} "
          f"{'lxml XSD':>9} {'xmlschema':>10} {'ratio':>7}   (median ms)")
    for label, size in (("metadata only", 0), ("1 MB attachment", 1 << 20),
                        ("10 MB attachment", 10 << 20)):
        repeat = args.repeat if size < (5 << 20) else max(2, args.repeat // 2)
        _row(label, size, repeat, xsd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
