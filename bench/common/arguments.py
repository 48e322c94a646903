"""Argument parsing shared by every command: the one-line usage error and value parsers.

Bad flags or values print one line (``sessionbench: error: …``) and exit with code 2.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, NoReturn

import variants

EXIT_USAGE = 2
SERVERS = ("uvicorn", "granian")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the bad flag or value."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def usage_error(message: str) -> NoReturn:
    print(f"sessionbench: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def add_command(
    sub: Any, name: str, func: Callable[[argparse.Namespace], int], help: str
) -> Parser:
    """Add subcommand *name* (run by *func*) to *sub*, the CLI's ``add_subparsers``."""
    command: Parser = sub.add_parser(name, help=help, description=help)
    command.set_defaults(func=func)
    return command


def port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port {value!r} is not an integer") from None
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port {number} is outside 1..65535")
    return number


def variant_name(value: str) -> str:
    try:
        return variants.get(value).name
    except KeyError as exc:
        raise argparse.ArgumentTypeError(str(exc.args[0])) from None


VARIANT_FILE = "--variant"


def variant_file_flag(p: argparse.ArgumentParser) -> None:
    """``--variant FILE`` (repeatable): a variant defined outside the suite (``docs/extending.md``).

    ``load_variant_files`` reads the files before the arguments are parsed, so ``--variants``
    and the positional names already know the files' variants; the parsed value is the list.
    """
    p.add_argument(
        VARIANT_FILE,
        dest="variant_files",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="also a variant defined in FILE, outside the suite (repeatable; docs/extending.md)",
    )


def load_variant_files(argv: Sequence[str]) -> None:
    """Add the installed packages' variants (entry points) and those of every ``--variant
    FILE`` in *argv* to the registry (and to the environment the suite's child processes
    inherit); a bad file is a one-line usage error."""
    variants.use_entry_points()
    paths = [Path(value) for flag, value in itertools.pairwise(argv) if flag == VARIANT_FILE]
    paths += [Path(a.split("=", 1)[1]) for a in argv if a.startswith(f"{VARIANT_FILE}=")]
    try:
        variants.use_files(paths)
    except variants.external.ExternalVariantError as exc:
        usage_error(str(exc))


def with_external(names: list[str]) -> list[str]:
    """A command's default *names*, then the variants from outside the suite (``--variant``
    files, entry points): your own variant joins the references unless ``--variants`` says."""
    external = [name for name in variants.VARIANTS if not variants.built_in(name)]
    return list(dict.fromkeys([*names, *external]))


def comma_list(item: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    """A parser of ``a,b,c`` whose items *item* parses (and names when bad)."""

    def parse(value: str) -> list[Any]:
        items = [part.strip() for part in value.split(",") if part.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"{value!r} is an empty list")
        return list(dict.fromkeys(item(part) for part in items))  # repeats dropped, order kept

    return parse


def one_of(what: str, known: Callable[[], Collection[str]]) -> Callable[[str], str]:
    """A parser of one name from ``known()`` (called when parsing, so imports stay lazy)."""

    def parse(value: str) -> str:
        names = known()
        if value not in names:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {value!r} (known: {', '.join(names)})"
            )
        return value

    return parse


asgi_server = one_of("server", lambda: SERVERS)


def _drivers() -> Collection[str]:
    from variants.settings import DRIVERS

    return DRIVERS


driver_name = one_of("driver", _drivers)


def driver_flag(p: argparse.ArgumentParser) -> None:
    """``--driver NAME``: one database driver for every variant that can run on it."""
    p.add_argument(
        "--driver",
        type=driver_name,
        metavar="NAME",
        help="database driver, asyncpg or psycopg (default: each variant's own, asyncpg); "
        "variants that cannot run on it are left out",
    )


def number(kind: type, minimum: float, *, strict: bool = False) -> Callable[[str], Any]:
    """A parser of finite numbers of *kind* that are >= (or, *strict*, >) *minimum*."""

    def parse(value: str) -> Any:
        try:
            parsed = kind(value)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{value!r} is not {what}") from None
        if not math.isfinite(parsed) or parsed < minimum or (strict and parsed == minimum):
            bound = f"> {minimum}" if strict else f">= {minimum}"
            raise argparse.ArgumentTypeError(f"{value!r} must be a finite number {bound}")
        return parsed

    return parse


def mode_flags(p: argparse.ArgumentParser, *, quick: str, full: str) -> None:
    """``--quick`` / ``--full``: one preset or the other, into ``args.mode``."""
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick", help=quick)
    mode.add_argument("--full", dest="mode", action="store_const", const="full", help=full)
