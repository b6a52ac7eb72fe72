"""The ``connector`` command line: one fixed table of sub-commands.

Each sub-command lives in the module that owns its concern and exposes two functions:
``configure(parser: argparse.ArgumentParser) -> None`` and ``run(args) -> int``. Modules are
imported only when their command runs, so a broken optional dependency of one command does
not break the others. This module must not contain command logic itself.

Exit codes: 0 success, 1 the checked thing is invalid / the operation failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from connector import __version__
from connector.errors import ConnectorError

CONFIG_ENV = "CONNECTOR_CONFIG"  # the configuration file of every sub-command with --config

# name -> (module, one-line help). Fixed in code on purpose: no plugin discovery.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("connector.edxml.cmd_validate", "validate edXML files against the schemas"),
    "inspect": ("connector.edxml.cmd_inspect", "print a readable summary of an edXML file"),
    "map": ("connector.mapping.cmd_map", "map a local record to edXML, or back (--reverse)"),
    "mappings": ("connector.mapping.cmd_mappings", "check every mapping file"),
    "pki": ("connector.trust.cmd_pki", "create a demo PKI (pki init DIR)"),
    "sign-pdf": ("connector.trust.cmd_sign_pdf", "apply the organisation seal to a PDF"),
    "verify": ("connector.trust.cmd_verify", "verify the signatures of an edXML package or PDF"),
    "encrypt": ("connector.trust.cmd_encrypt", "encrypt a file for recipients (CMS)"),
    "decrypt": ("connector.trust.cmd_decrypt", "decrypt a CMS AuthEnvelopedData file"),
    "hub": ("connector.hub.cmd_hub", "run the interconnect hub emulator"),
    "check": ("connector.daemon.cmd_check", "load and check a connector configuration"),
    "certs": ("connector.trust.cmd_certs", "certificates and CRLs in use, with days left"),
    "run": ("connector.daemon.cmd_run", "run the connector daemon"),
    "messages": ("connector.store.cmd_messages", "list, show and retry tracked packages"),
    "dead-letters": ("connector.local.amqp_replay", "list and replay the AMQP dead-letter queue"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="connector",
        description="edoc-connector: agency document system <-> e-document interconnect",
    )
    parser.add_argument("--version", action="version", version=f"edoc-connector {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        command_parser.set_defaults(_module=module_name)
        if name in sys.argv[1:2]:
            # Only the chosen command's module is imported to add its arguments.
            importlib.import_module(module_name).configure(command_parser)
            _config_from_environment(command_parser)
    return parser


def _config_from_environment(command_parser: argparse.ArgumentParser) -> None:
    """``--config`` defaults to $CONNECTOR_CONFIG (containers set it once for every command)."""
    configured = os.environ.get(CONFIG_ENV)
    if not configured:
        return
    for action in command_parser._actions:
        if "--config" in action.option_strings:
            action.required = False
            action.default = configured
            action.help = f"{action.help or ''} (default: ${CONFIG_ENV} = {configured})".strip()


def main(argv: Sequence[str] | None = None) -> int:
    from connector.logsetup import quiet_known_warnings

    quiet_known_warnings()
    args_list = list(sys.argv[1:] if argv is None else argv)
    saved = sys.argv
    sys.argv = [saved[0], *args_list]
    try:
        parser = build_parser()
    finally:
        sys.argv = saved
    name = f"connector {args_list[0]}" if args_list else "connector"
    return _run_quietly(name, lambda: _parse_and_run(parser, args_list))


def _parse_and_run(parser: argparse.ArgumentParser, args_list: list[str]) -> int:
    args = parser.parse_args(args_list)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    module = importlib.import_module(args._module)
    result: int = module.run(args)
    return result


def _run_quietly(name: str, command: Callable[[], int]) -> int:
    """Run a command; input errors end with one line on stderr, never a traceback."""
    try:
        result = command()
        sys.stdout.flush()  # a closed pipe shows here, inside the guard
        return result
    except BrokenPipeError:
        # The reader went away (`connector messages list | head`): that is not an error of
        # ours. Point stdout at /dev/null so the interpreter's final flush stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports it
    except RecursionError:
        print(f"{name}: the input nests too deeply to be read (refused)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except ConnectorError as exc:
        print(f"{name}: {exc.message} ({exc.reason})", file=sys.stderr)
        return 1
    except OSError as exc:  # a file named on the command line: unreadable, a folder, gone
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"{name}: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
