"""The infrastructure commands: ``variants``, ``db``, ``serve`` and ``verify``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import Any

import variants
from bench.common.arguments import (
    SERVERS,
    add_command,
    driver_flag,
    number,
    port,
    variant_file_flag,
    variant_name,
)


def cmd_variants(args: argparse.Namespace) -> int:
    for variant in variants.VARIANTS.values():
        print(f"{variant.name}\t{variant.kind}\t{variant.label}" if args.long else variant.name)
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    import signal

    from bench.common import database

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
    from bench.common.server import serve

    with contextlib.suppress(KeyboardInterrupt):
        metrics_port = (args.metrics_port or args.port + 1) if args.metrics else None
        serve(args.variant, host=args.host, port=args.port, workers=args.workers,
              server=args.server, lab=args.lab, metrics_port=metrics_port)  # fmt: skip
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from bench.common import drivers
    from bench.common.arguments import usage_error
    from bench.common.verify import run_verify

    if args.url is not None:
        return run_verify(url=args.url, names=[])
    try:
        names, notes = drivers.only(
            args.variants or list(variants.VARIANTS), args.driver, named=bool(args.variants)
        )
    except drivers.DriverError as exc:
        usage_error(str(exc))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return run_verify(url=None, names=names, driver=args.driver)


def register(sub: Any) -> None:
    """Add ``variants``, ``db``, ``serve`` and ``verify`` to the CLI's subparsers."""
    p = add_command(sub, "variants", cmd_variants, "List the registered variants, one per line.")
    p.add_argument("--long", action="store_true", help="also print each variant's kind and label")
    variant_file_flag(p)

    help = "Run a seeded embedded PostgreSQL; print its DATABASE_URL; stop on Ctrl-C."
    p = add_command(sub, "db", cmd_db, help)
    p.add_argument("--listen", metavar="ADDRESS",
                   help="also accept TCP on ADDRESS:5432 from its subnet (trust auth: private "
                   "networks only)")  # fmt: skip

    help = "Serve one variant: uvicorn, uvloop, httptools, no access log."
    p = add_command(sub, "serve", cmd_serve, help)
    p.add_argument("variant", type=variant_name, help="a name from `sessionbench variants`")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=port, default=8000, help="TCP port (default 8000)")
    p.add_argument("--workers", type=number(int, 1), default=1, help="server worker processes")
    p.add_argument("--server", choices=SERVERS, default="uvicorn", help="ASGI server")
    p.add_argument("--lab", action="store_true", help="also mount the pitfall lab's /lab routes")
    variant_file_flag(p)
    p.add_argument(
        "--metrics",
        action="store_true",
        help="export CPU seconds in the Prometheus format for `run --remote`",
    )
    p.add_argument(
        "--metrics-port", type=port, metavar="PORT", help="port of /metrics (default: --port + 1)"
    )

    help = "Check variants against the HTTP contract (exit 1 on failure)."
    p = add_command(sub, "verify", cmd_verify, help)
    p.add_argument("variants", nargs="*", type=variant_name, metavar="VARIANT",
                   help="variants to start and check (default: all)")  # fmt: skip
    p.add_argument("--url", help="check the server already running at URL instead")
    driver_flag(p)
    variant_file_flag(p)
