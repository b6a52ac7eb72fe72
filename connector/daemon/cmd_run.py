"""``connector run --config FILE``: the daemon in the foreground (SIGTERM/SIGINT stop it).

Exit 0 after a graceful stop, 1 if a worker died, 2 if the configuration is unusable (every
problem reported at once), 130 on a forced stop.
"""

from __future__ import annotations

import argparse
import logging
import sys

from connector.errors import ConfigurationError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="connector YAML file")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpcore", "amqp", "kombu", "pyhanko", "signxml"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run(args: argparse.Namespace) -> int:
    from connector.config import load_config
    from connector.daemon import faults, runner, wiring

    setup_logging(args.log_level)
    try:
        config = load_config(args.config)
        runtime = wiring.build(config, fault_hook=faults.from_environment())
    except ConfigurationError as exc:
        print(f"connector run: {exc.message}", file=sys.stderr)
        return 2
    return runner.run(runtime)
