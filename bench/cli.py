"""``sessionbench``: the command line. It only dispatches: each command package adds its
own subparser (``register(subparsers)`` in its ``cli`` module) and runs its own code.

Bad flags or values print one line (``sessionbench: error: …``) and exit with code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bench.common import commands
from bench.common.arguments import Parser, load_variant_files, usage_error
from bench.cost import command as cost
from bench.history import command as history
from bench.load import cli as load
from bench.micro import cli as micro
from bench.pitfalls import cli as pitfalls
from bench.report import cli as report

COMMANDS = (commands, load, report, micro, pitfalls, cost, history)
"""Modules whose ``register(subparsers)`` adds commands, in ``--help`` order."""


def build_parser() -> Parser:
    parser = Parser(
        prog="sessionbench",
        description="Compare how FastAPI apps hold their async SQLAlchemy session.",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    load_variant_files(argv)  # before parsing: the flags that name variants then know them
    args = build_parser().parse_args(argv)
    if getattr(args, "host", None) not in (None, "127.0.0.1", "localhost", "::1"):
        print(f"sessionbench: warning: binding {args.host}, not loopback", file=sys.stderr)
    from bench.common.database import DatabaseError
    from bench.common.result_files import ResultFileError
    from variants.settings import InvalidDatabaseUrl

    try:
        result: int = args.func(args)
    except (InvalidDatabaseUrl, ResultFileError) as exc:
        usage_error(str(exc))
    except DatabaseError as exc:
        print(f"sessionbench: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
