"""The `vitalstream` command: the one place that wires everything together."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from analytics.errors import VitalstreamError

log = logging.getLogger("vitalstream")

# Exit codes: 1 for an error that the same command will meet again (fix the
# input or the configuration), 75 (EX_TEMPFAIL) for one that may pass later.
EXIT_ERROR = 1
EXIT_RETRY_LATER = 75

# Subcommand name -> module in streams.commands. Each has register(subparsers).
COMMANDS: dict[str, str] = {
    "stack": "stack",
    "gateway": "gateway",
    "worker": "worker",
    "notify": "notify",
    "console": "console",
    "simulate": "simulate",
    "demo": "demo",
    "decode": "decode",
    "devices": "devices",
    "staff": "staff",
    "news2": "news2",
    "schemas": "schemas",
    "influx": "influx",
    "kafka": "kafka",
    "export": "export",
    "dashboards": "dashboards",
    "compose": "compose",
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitalstream", description="Remote patient monitoring stream processor."
    )
    parser.add_argument("--log-level", default="info", help="debug|info|warning|error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # Import only the module of the command asked for (plus all for --help).
    wanted = next((a for a in argv if a in COMMANDS), None)
    for name, module_name in COMMANDS.items():
        if wanted is not None and name != wanted:
            sub.add_parser(name, help=f"(see `vitalstream {name} --help`)")
            continue
        module = importlib.import_module(f"streams.commands.{module_name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except VitalstreamError as exc:
        # The one place errors become a message: no traceback for a known error.
        log.error("%s: %s", type(exc).__name__, exc)
        print(f"vitalstream {args.command}: {exc}", file=sys.stderr)
        return EXIT_RETRY_LATER if exc.retriable else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
