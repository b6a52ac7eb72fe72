"""``connector run --config FILE``: the daemon in the foreground (SIGTERM/SIGINT stop it).

Exit 0 after a graceful stop, 1 if a worker died, 2 if the configuration is unusable (every
problem reported at once), 130 on a forced stop.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from connector.errors import ConfigurationError, UnavailableError
from connector.logsetup import LOG_FORMATS, LOG_LEVELS, setup_logging

log = logging.getLogger("connector.run")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="connector YAML file")
    parser.add_argument(
        "--log-level", default=os.environ.get("CONNECTOR_LOG_LEVEL", "INFO").upper(),
        choices=LOG_LEVELS, help="default: $CONNECTOR_LOG_LEVEL or INFO",
    )
    parser.add_argument(
        "--log-format", default=os.environ.get("CONNECTOR_LOG_FORMAT", "text"),
        choices=LOG_FORMATS,
        help="text lines, or one JSON object per line (default: $CONNECTOR_LOG_FORMAT or text)",
    )


def run(args: argparse.Namespace) -> int:
    from connector.config import load_config
    from connector.daemon import faults, runner, wiring
    from connector.resources import load_schemas

    setup_logging(args.log_level, args.log_format)
    try:
        load_schemas()  # a broken installation stops here, never record by record
        config = load_config(args.config)
        runtime = wiring.build(config, fault_hook=faults.from_environment())
    except ConfigurationError as exc:
        _say(args, exc.message)
        log.error("connector stopped (exit 2): cannot start: %s", _reason(args, exc.message))
        return 2
    except UnavailableError as exc:  # e.g. the PostgreSQL store is down: start again later
        _say(args, exc.message)
        log.error("connector stopped (exit 75): a dependency is down: %s",
                  _reason(args, exc.message))
        return 75
    code = runner.run(runtime)
    log.info("connector stopped (exit %d)", code)
    return code


def _say(args: argparse.Namespace, message: str) -> None:
    """The reason for a person at a terminal; with JSON logs only the log line carries it
    (a log pipeline parses stderr line by line)."""
    if args.log_format != "json":
        print(f"connector run: {message}", file=sys.stderr)


def _reason(args: argparse.Namespace, message: str) -> str:
    # Text: the full reason was just printed above; JSON: the line is the only record.
    return message if args.log_format == "json" else message.splitlines()[0]
