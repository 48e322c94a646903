"""``sessionbench``: the command line. Each subcommand parses its flags and calls one module.

Bad flags or values print one line (``sessionbench: error: …``) and exit with code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import sys
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, NoReturn

import variants
from variants.settings import POOL_QUEUES

EXIT_USAGE = 2
SERVERS = ("uvicorn", "granian")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the bad flag or value."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def usage_error(message: str) -> NoReturn:
    print(f"sessionbench: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


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


# --- subcommands ---------------------------------------------------------------------------


def cmd_variants(args: argparse.Namespace) -> int:
    for variant in variants.VARIANTS.values():
        print(f"{variant.name}\t{variant.kind}\t{variant.label}" if args.long else variant.name)
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    import signal

    from bench import database

    listen = {"listen_addresses": f"'{args.listen}'"} if args.listen else {}
    embedded = database.EmbeddedPostgres(settings=listen)
    if args.listen:  # other hosts of its own network, with the same trust as local sockets
        with (embedded.pgdata / "pg_hba.conf").open("a") as hba:
            hba.write("host all all samenet trust\n")
    with database.terminate_on_sigterm(), embedded as server:
        asyncio.run(database.ensure_schema(server.url))
        url = f"postgresql://postgres@{args.listen}:5432/postgres" if args.listen else None
        print(url or server.url.url, flush=True)
        print(
            f"sessionbench: PostgreSQL (pid {server.pid}) ready with the seed; "
            "Ctrl-C stops it and deletes its data",
            file=sys.stderr,
        )
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    print("sessionbench: PostgreSQL stopped, data deleted", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from bench.server import serve

    with contextlib.suppress(KeyboardInterrupt):
        metrics_port = (args.metrics_port or args.port + 1) if args.metrics else None
        serve(args.variant, host=args.host, port=args.port, workers=args.workers,
              server=args.server, lab=args.lab, metrics_port=metrics_port)  # fmt: skip
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from bench.verify import run_verify

    return run_verify(url=args.url, names=args.variants or list(variants.VARIANTS))


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


def _load_scenarios() -> Collection[str]:
    from bench.load.scenarios import SCENARIOS

    return SCENARIOS


def _pitfall_scenarios() -> Collection[str]:
    from bench.pitfalls.scenarios import SCENARIOS

    return SCENARIOS


asgi_server = one_of("server", lambda: SERVERS)
scenario_name = one_of("scenario", _load_scenarios)
pitfall_scenario = one_of("pitfall scenario", _pitfall_scenarios)


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


def cmd_run(args: argparse.Namespace) -> int:
    from bench.run_command import run

    return run(args)


def master_address(value: str) -> tuple[str, int]:
    from bench.load.distributed import parse_master

    try:
        return parse_master(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r}: {exc}") from exc


def remote_servers(value: str) -> dict[str, str]:
    from bench.metrics import parse_remote

    try:
        remote = parse_remote(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    for name in remote:
        variant_name(name)
    return remote


def cmd_worker(args: argparse.Namespace) -> int:
    from bench.load.distributed import run_worker

    return run_worker(*args.master)


def cmd_micro(args: argparse.Namespace) -> int:
    from bench.micro_command import run

    return run(args)


def run_folder(value: str) -> Path:
    path = Path(value)
    if not ((path / "run.json").is_file() or (path / "cost.json").is_file()):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a run folder (neither run.json nor cost.json)"
        )
    return path


def report_folder(value: str) -> Path:
    """A folder with a load run (run.json), a pitfall run (pitfalls.json) or a cost.json."""
    path = Path(value)
    if not any((path / name).is_file() for name in ("run.json", "pitfalls.json", "cost.json")):
        raise argparse.ArgumentTypeError(
            f"{value!r} has none of run.json, pitfalls.json, cost.json"
        )
    return path


def cmd_pitfalls(args: argparse.Namespace) -> int:
    from bench.pitfalls.command import run

    return run(args)


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.compare_command import run

    if len(args.runs) > 2:
        usage_error(f"compare takes at most two run folders, got {len(args.runs)}")
    try:
        return run(args)
    except FileNotFoundError as exc:
        usage_error(str(exc))


def cmd_report(args: argparse.Namespace) -> int:
    from bench.report import build
    from bench.results import latest_run

    try:
        folder = args.run or latest_run()
    except FileNotFoundError as exc:
        usage_error(str(exc))
    for path in build(folder):
        print(path)
    if args.readme is not None:
        from bench.report import update_readme

        try:
            update_readme(folder, args.readme)
        except (ValueError, FileNotFoundError) as exc:
            usage_error(f"--readme: {exc}")
        print(args.readme)
    return 0


def build_parser() -> Parser:
    parser = Parser(
        prog="sessionbench",
        description="Compare how FastAPI apps hold their async SQLAlchemy session.",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str) -> Parser:
        command: Parser = sub.add_parser(name, help=help, description=help)
        command.set_defaults(func=func)
        return command

    p = add("variants", cmd_variants, "List the registered variants, one per line.")
    p.add_argument("--long", action="store_true", help="also print each variant's kind and label")

    p = add(
        "db", cmd_db, "Run a seeded embedded PostgreSQL; print its DATABASE_URL; stop on Ctrl-C."
    )
    p.add_argument("--listen", metavar="ADDRESS",
                   help="also accept TCP on ADDRESS:5432 from its subnet (trust auth: private "
                   "networks only)")  # fmt: skip

    p = add("serve", cmd_serve, "Serve one variant: uvicorn, uvloop, httptools, no access log.")
    p.add_argument("variant", type=variant_name, help="a name from `sessionbench variants`")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=port, default=8000, help="TCP port (default 8000)")
    p.add_argument("--workers", type=number(int, 1), default=1, help="server worker processes")
    p.add_argument("--server", choices=SERVERS, default="uvicorn", help="ASGI server")
    p.add_argument("--lab", action="store_true", help="also mount the pitfall lab's /lab routes")
    p.add_argument(
        "--metrics",
        action="store_true",
        help="export CPU seconds in the Prometheus format for `run --remote`",
    )
    p.add_argument(
        "--metrics-port", type=port, metavar="PORT", help="port of /metrics (default: --port + 1)"
    )

    p = add("verify", cmd_verify, "Check variants against the HTTP contract (exit 1 on failure).")
    p.add_argument("variants", nargs="*", type=variant_name, metavar="VARIANT",
                   help="variants to start and check (default: all)")  # fmt: skip
    p.add_argument("--url", help="check the server already running at URL instead")

    p = add("run", cmd_run, "Run the load benchmark matrix (quick by default) into a run folder.")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        dest="mode",
        action="store_const",
        const="quick",
        help="3 strategies + raw, read and write, 32 users, 3 trials (default)",
    )
    mode.add_argument(
        "--full",
        dest="mode",
        action="store_const",
        const="full",
        help="every variant and scenario, users 32,128, 5 trials",
    )
    p.add_argument("--variants", type=comma_list(variant_name), help="comma-separated names")
    p.add_argument("--scenarios", type=comma_list(scenario_name), help="comma-separated scenarios")
    p.add_argument(
        "--users", type=comma_list(number(int, 1)), help="comma-separated concurrency levels"
    )
    p.add_argument("--trials", type=number(int, 1), help="trials per cell")
    p.add_argument(
        "--duration", type=number(float, 0, strict=True), help="measured seconds per cell"
    )
    p.add_argument("--warmup", type=number(float, 0), help="discarded seconds before measuring")
    p.add_argument(
        "--pool-size",
        type=comma_list(number(int, 1)),
        default=[10],
        metavar="N[,N…]",
        help="pool size per server process; several values = an axis (default 10)",
    )
    p.add_argument(
        "--max-overflow", type=number(int, 0), default=0, help="pool overflow (default 0)"
    )
    p.add_argument(
        "--workers",
        type=comma_list(number(int, 1)),
        default=[1],
        metavar="N[,N…]",
        help="server worker processes; several values = an axis (default 1)",
    )
    p.add_argument(
        "--server",
        type=comma_list(asgi_server),
        default=["uvicorn"],
        metavar="NAME[,NAME…]",
        help="uvicorn and/or granian (default uvicorn)",
    )
    p.add_argument(
        "--pool-queue",
        type=comma_list(one_of("pool queue", lambda: POOL_QUEUES)),
        default=["sqlalchemy"],
        metavar="NAME[,NAME…]",
        help="how the pool hands out connections: sqlalchemy, fifo, hybrid (default sqlalchemy)",
    )
    p.add_argument(
        "--pool-stats",
        action="store_true",
        help="servers record pool wait/hold times and barging per cell (costs ~1-3 %% CPU)",
    )
    p.add_argument(
        "--locust-processes",
        type=number(int, 1),
        default=1,
        metavar="N",
        help="load generator processes (locust --processes; default 1)",
    )
    p.add_argument("--expect-workers", type=number(int, 1), default=0, metavar="N",
                   help="locust distributed: start a master, wait for N `sessionbench worker`s "
                   "before each cell")  # fmt: skip
    p.add_argument(
        "--master-bind",
        default="127.0.0.1",
        metavar="HOST",
        help="address the locust master listens on (default 127.0.0.1)",
    )
    p.add_argument(
        "--master-port",
        type=port,
        default=5557,
        metavar="PORT",
        help="port the locust master listens on (default 5557)",
    )
    p.add_argument("--remote", type=remote_servers, metavar="VARIANT=URL[,…]",
                   help="benchmark servers started elsewhere (`serve --metrics`); needs "
                   "DATABASE_URL of their database")  # fmt: skip
    p.add_argument("--out", type=Path, help="run folder (default results/<run-id>)")
    p.set_defaults(mode="quick")

    p = add("worker", cmd_worker, "Run a locust worker for a `run --expect-workers` master.")
    p.add_argument(
        "--master",
        type=master_address,
        required=True,
        metavar="HOST[:PORT]",
        help="the runner's locust master (port default 5557)",
    )

    p = add("report", cmd_report, "Write plots, report.md and index.html into a run folder.")
    p.add_argument(
        "run", nargs="?", type=report_folder, metavar="RUN_DIR", help="default: latest run"
    )
    p.add_argument("--readme", type=Path, metavar="FILE",
                   help="also refresh FILE's generated reference-results section")  # fmt: skip

    p = add("compare", cmd_compare, "Compare strategies within a run, or two runs cell by cell.")
    p.add_argument("runs", nargs="*", type=run_folder, metavar="RUN_DIR",
                   help="none: latest run; one: within it; two: B against A")  # fmt: skip
    p.add_argument("--metric", choices=["rps", "cpu", "p50", "p99", "instructions"],
                   default="rps", help="what to compare (default rps; changes in its own unit; "
                   "instructions: the valgrind counts of cost.json)")  # fmt: skip
    p.add_argument("--baseline",
                   help="variant the others are set against (default raw; context for "
                   "instructions)")  # fmt: skip
    p.add_argument("--fail-above", type=number(float, 0), metavar="PCT",
                   help="exit 1 when B is significantly worse than A by more than PCT %% "
                        "of the metric (req/s lower; µs higher)")  # fmt: skip

    p = add("micro", cmd_micro, "Run the session micro-benchmarks (pytest-benchmark JSON).")
    p.add_argument(
        "--quick", action="store_true", help="5 rounds per benchmark instead of 30 (about 20 s)"
    )
    p.add_argument("--out", type=Path, help="run folder (default results/<run-id>-micro)")
    p.add_argument("-k", dest="select", metavar="EXPR",
                   help="only benchmarks matching this pytest -k expression")  # fmt: skip

    p = add(
        "pitfalls", cmd_pitfalls, "Run the pitfall matrix: each scenario against each strategy."
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        dest="mode",
        action="store_const",
        const="quick",
        help="few requests per scenario, 8 s soak (default; about 3 minutes)",
    )
    mode.add_argument(
        "--full",
        dest="mode",
        action="store_const",
        const="full",
        help="more requests per scenario, 60 s soak",
    )
    p.add_argument(
        "--variants",
        type=comma_list(variant_name),
        help="comma-separated names (default: every strategy)",
    )
    p.add_argument(
        "--scenarios",
        type=comma_list(pitfall_scenario),
        help="comma-separated scenarios (default: all)",
    )
    p.add_argument(
        "--soak",
        type=number(float, 0, strict=True),
        metavar="SECONDS",
        help="soak duration (default: 8 quick, 60 full)",
    )
    p.add_argument("--pool-size", type=number(int, 1), default=10, help="pool size (default 10)")
    p.add_argument(
        "--pool-timeout",
        type=number(float, 0, strict=True),
        default=2.0,
        metavar="SECONDS",
        help="pool timeout (default 2: exhaustion shows fast)",
    )
    p.add_argument("--out", type=Path, help="run folder (default results/<run-id>-pitfalls)")
    p.set_defaults(mode="quick")

    from bench.cost.command import register as register_cost

    register_cost(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "host", None) not in (None, "127.0.0.1", "localhost", "::1"):
        print(f"sessionbench: warning: binding {args.host}, not loopback", file=sys.stderr)
    from bench.database import DatabaseError
    from bench.result_files import ResultFileError
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
