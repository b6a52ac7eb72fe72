"""``connector hub``: run the hub emulator in the foreground until SIGINT/SIGTERM.

Configuration comes from ``--config FILE`` (see config/hub.yaml) and/or flags; flags win.
Once listening it prints one line ``hub listening on URL`` to stdout (scripts wait for it;
with ``--port 0`` it is the only way to learn the port). This module must not contain
hub behaviour.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

import yaml

from connector.errors import ConfigurationError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="hub emulator YAML (config/hub.yaml)")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8780; 0 = any free port)")
    parser.add_argument("--db", metavar="PATH", help="SQLite file (default: in memory)")
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="SYSTEMID=ORGANID:SECRET_ENV",
        help="an account whose secret is in environment variable SECRET_ENV (repeatable)",
    )
    parser.add_argument(
        "--window", type=int, metavar="SECONDS", help="accepted timestamp skew (default 300)"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fault setting, e.g. error_rate=0.1, latency_ms=200, drop_after_rate=0.05",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from connector.hub import config as hub_config
    from connector.hub.server import HubEmulator

    try:
        overrides = _overrides(args)
        if args.config:
            config = hub_config.load(args.config, overrides)
        else:
            config = hub_config.validate(overrides, source="command line")
        emulator = HubEmulator(config)
        url = emulator.start()
    except ConfigurationError as exc:
        print(f"connector hub: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"connector hub: cannot listen: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise SystemExit(1)  # a second signal: leave at once
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    print(f"hub listening on {url}", flush=True)
    while not stop.wait(0.5):
        pass
    emulator.stop()
    return 0


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if args.host is not None:
        result["host"] = args.host
    if args.port is not None:
        result["port"] = args.port
    if args.db is not None:
        result["db"] = args.db
    if args.window is not None:
        result["timestamp_window_seconds"] = args.window
    if args.account:
        accounts = []
        for spec in args.account:
            systemid, _, rest = spec.partition("=")
            organ_id, _, secret_env = rest.rpartition(":")
            if not systemid or not organ_id or not secret_env:
                raise ConfigurationError(
                    f"--account {spec!r}: expected SYSTEMID=ORGANID:SECRET_ENV", reason="config"
                )
            accounts.append({"systemid": systemid, "organ_id": organ_id, "secret_env": secret_env})
        result["accounts"] = accounts
    if args.fault:
        faults: dict[str, Any] = {}
        for spec in args.fault:
            key, sep, value = spec.partition("=")
            if not sep:
                raise ConfigurationError(f"--fault {spec!r}: expected KEY=VALUE", reason="config")
            faults[key.strip()] = yaml.safe_load(value)
        result["faults"] = faults
    return result
