"""Settings every variant shares, read once from the environment, and the URL forms they need.

Every variant gets the same pool: a strategy must not win by holding more connections.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg"}
POOL_QUEUES = ("sqlalchemy", "fifo", "hybrid")
"""How a pool hands out returned connections (``variants/pool.py``)."""
DRIVERS = ("asyncpg", "psycopg")
"""The PostgreSQL drivers an engine can run on (``SESSIONBENCH_DRIVER``); the first: default."""
DRIVER_ENV = "SESSIONBENCH_DRIVER"
PRE_PING_ENV = "SESSIONBENCH_POOL_PRE_PING"
"""``1``: the pool tests each connection on checkout (SQLAlchemy's ``pool_pre_ping``)."""
PSYCOPG_PREPARE_THRESHOLD = 0
"""psycopg prepares a statement on its first execution (its default, 5, waits for the fifth):
asyncpg, through SQLAlchemy's adapter, prepares every statement and caches it per connection
(100 statements; psycopg's ``prepared_max`` is 100 too), so both run prepared statements from
the first request on."""


class InvalidDatabaseUrl(ValueError):
    """``DATABASE_URL`` is not a PostgreSQL URL this suite can use; the message says why."""


@dataclass(frozen=True)
class DatabaseUrl:
    """A PostgreSQL URL in any accepted form, normalised to ``postgresql://``."""

    url: str

    @classmethod
    def parse(cls, raw: str) -> DatabaseUrl:
        """Validate *raw* and normalise its scheme; raise InvalidDatabaseUrl naming the problem."""
        parts = urlsplit(raw.strip())
        if parts.scheme not in _SCHEMES:
            raise InvalidDatabaseUrl(
                f"DATABASE_URL scheme {parts.scheme!r} is not supported; "
                "use postgresql:// or postgresql+asyncpg://"
            )
        if not parts.hostname and "host" not in dict(parse_qsl(parts.query)):
            raise InvalidDatabaseUrl(
                "DATABASE_URL names no host (use …@host/db or ?host=/socket/dir)"
            )
        return cls(urlunsplit(("postgresql", *parts[1:])))

    @property
    def asyncpg(self) -> str:
        """The DSN asyncpg.connect() and asyncpg.create_pool() take."""
        return self.url

    @property
    def sqlalchemy(self) -> str:
        """The URL create_async_engine() takes (asyncpg dialect)."""
        return "postgresql+asyncpg" + self.url[len("postgresql") :]

    @property
    def psycopg(self) -> str:
        """The URL create_engine() and create_async_engine() take for psycopg 3."""
        return "postgresql+psycopg" + self.url[len("postgresql") :]

    @property
    def redacted(self) -> str:
        """The URL with any password replaced by ``***``, for logs and run.json."""
        parts = urlsplit(self.url)
        netloc = parts.netloc
        if parts.password is not None:
            userinfo, _, hostinfo = netloc.rpartition("@")
            netloc = f"{userinfo.split(':', 1)[0]}:***@{hostinfo}"
        query = urlencode(
            [(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query)], safe="/"
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@dataclass(frozen=True)
class Settings:
    """Engine and pool settings, identical for every variant."""

    url: DatabaseUrl
    pool_size: int = 10
    max_overflow: int = 0
    pool_timeout: float = 30.0
    pool_queue: str = "sqlalchemy"
    """The pool's queue, one of POOL_QUEUES (``SESSIONBENCH_POOL_QUEUE``)."""
    app_name: str = "sessionbench"
    """PostgreSQL ``application_name`` of the pool's connections (lets the runner find them)."""
    driver: str = "asyncpg"
    """The engine's driver, one of DRIVERS (``SESSIONBENCH_DRIVER``)."""
    pool_pre_ping: bool = False
    """Test a connection on checkout, replacing it if the server dropped it (``PRE_PING_ENV``)."""

    @property
    def engine_url(self) -> str:
        """The URL create_async_engine() takes for the chosen driver."""
        return self.url.psycopg if self.driver == "psycopg" else self.url.sqlalchemy

    @property
    def connect_args(self) -> dict[str, Any]:
        """The driver's connect() arguments: the application name, prepared statements."""
        if self.driver == "psycopg":
            return {
                "application_name": self.app_name,
                "prepare_threshold": PSYCOPG_PREPARE_THRESHOLD,
            }
        return {"server_settings": {"application_name": self.app_name}}

    @classmethod
    def from_env(cls) -> Settings:
        raw = os.environ.get("DATABASE_URL")
        if not raw:
            raise RuntimeError(
                "DATABASE_URL is not set: start variants with `sessionbench serve`, "
                "which provides an embedded PostgreSQL"
            )
        queue = os.environ.get("SESSIONBENCH_POOL_QUEUE", cls.pool_queue)
        if queue not in POOL_QUEUES:
            raise ValueError(
                f"SESSIONBENCH_POOL_QUEUE {queue!r} is not one of {', '.join(POOL_QUEUES)}"
            )
        driver = os.environ.get(DRIVER_ENV) or cls.driver
        if driver not in DRIVERS:
            raise ValueError(f"{DRIVER_ENV} {driver!r} is not one of {', '.join(DRIVERS)}")
        pre_ping = os.environ.get(PRE_PING_ENV) or "0"
        if pre_ping not in ("0", "1"):
            raise ValueError(f"{PRE_PING_ENV} {pre_ping!r} is not 0 or 1")
        return cls(
            url=DatabaseUrl.parse(raw),
            driver=driver,
            pool_queue=queue,
            pool_size=int(os.environ.get("SESSIONBENCH_POOL_SIZE", cls.pool_size)),
            max_overflow=int(os.environ.get("SESSIONBENCH_MAX_OVERFLOW", cls.max_overflow)),
            pool_timeout=float(os.environ.get("SESSIONBENCH_POOL_TIMEOUT", cls.pool_timeout)),
            app_name=os.environ.get("SESSIONBENCH_APP_NAME", cls.app_name),
            pool_pre_ping=pre_ping == "1",
        )
