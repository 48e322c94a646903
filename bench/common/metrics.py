"""Server CPU across machines: ``serve --metrics`` exports it, ``run --remote`` reads it.

**Exporter.** ``sessionbench serve VARIANT --metrics`` serves, on its own port (the app's
port + 1 unless ``--metrics-port``; never on the app's port, so neither the measured
request path nor the OpenAPI schema change), the Prometheus text format from
prometheus_client: its standard process collector (``process_cpu_seconds_total``: the
serving process alone) and ``sessionbench_server_cpu_seconds_total``, the user + system
CPU of the serving process *and every descendant* (uvicorn/granian workers), which is
what the runner's own CPU snapshot counts for a server it started.

**Remote servers.** :class:`RemoteServer` stands in for a started
:class:`bench.common.server.VariantServer`: same ``base_url``, ``app_name`` and ``alive()``, no
PID; the runner reads :func:`read_cpu` at the window's edges for CPU per request.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import psutil

CPU_METRIC = "sessionbench_server_cpu_seconds"  # a counter: exposed with _total


class TreeCpuCollector:
    """CPU seconds of this process and its descendants (ended children are lost: none are)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def collect(self) -> Iterator[object]:
        from prometheus_client.core import CounterMetricFamily

        root = psutil.Process(self.pid)
        seconds = 0.0
        for proc in [root, *root.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            seconds += times.user + times.system
        family = CounterMetricFamily(
            CPU_METRIC, "User + system CPU of the server process and its workers."
        )
        family.add_metric([], seconds)
        yield family


def start_exporter(host: str, port: int) -> None:
    """Serve /metrics on host:port from a daemon thread of this (the serving) process."""
    from prometheus_client import REGISTRY, start_http_server

    REGISTRY.register(TreeCpuCollector(os.getpid()))  # type: ignore[arg-type]
    start_http_server(port, addr=host)


def metrics_url(base_url: str) -> str:
    """Where ``serve --metrics`` exports for a server at *base_url*: its port + 1."""
    parts = urlsplit(base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port + 1}/metrics"


def read_cpu(url: str, timeout: float = 2.0) -> float | None:
    """The server's CPU seconds from its /metrics, None when it exports none."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    for family in text_string_to_metric_families(response.text):
        if family.name == CPU_METRIC:
            for sample in family.samples:
                if sample.name == CPU_METRIC + "_total":
                    return float(sample.value)
    return None


class RemoteServer:
    """A variant server the runner did not start (``run --remote VARIANT=URL``)."""

    pid: int | None = None

    def __init__(self, variant: str, base_url: str) -> None:
        import variants

        self.variant = variants.get(variant)
        self.base_url = base_url.rstrip("/")
        self.metrics = metrics_url(self.base_url)
        self.port = urlsplit(self.base_url).port or 80

    @property
    def app_name(self) -> str:
        """What ``sessionbench serve`` names its connections (the runner's convention)."""
        return f"sessionbench-{self.variant.name}-{self.port}"

    def alive(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self, timeout: float = 0.0) -> None:
        from bench.common.processes import ServerError

        if not self.alive():
            raise ServerError(f"remote {self.variant.name} at {self.base_url}: /health failed")

    def stop(self, timeout: float = 0.0) -> None:
        """Not ours to stop."""

    def log_tail(self, lines: int = 15) -> str:
        return f"(remote server at {self.base_url}: its log is on its own host)"


def parse_remote(value: str) -> dict[str, str]:
    """``VARIANT=URL[,VARIANT=URL…]`` → {variant: url}; ValueError names the bad part."""
    remote: dict[str, str] = {}
    for part in value.split(","):
        name, sep, url = part.partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            raise ValueError(f"{part!r} is not VARIANT=http://HOST:PORT")
        if urlsplit(url).port is None:
            raise ValueError(f"{url!r} names no port")
        remote[name] = url
    return remote
