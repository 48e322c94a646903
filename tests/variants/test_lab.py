"""The pitfall lab is mounted only on request (``serve --lab``) and never in the schema."""

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bench.common.server import VariantServer
from variants.settings import DatabaseUrl

FAMILIES = ["scoped", "depends", "context"]
LIBRARIES = ["fastapi_async_sqlalchemy", "advanced_alchemy", "fastapi_sqla"]
SECONDS_MAX = 5  # variants.lab.common.SECONDS_MAX (importing it needs DATABASE_URL)


@pytest.fixture(scope="module")
def lab_server(
    db: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VariantServer]:
    server = VariantServer(
        "scoped", db, log_path=Path(tmp_path_factory.mktemp("lab")) / "s.log", lab=True
    )
    with server:
        yield server


def lab_paths(server: VariantServer) -> list[str]:
    schema = httpx.get(f"{server.base_url}/openapi.json").json()
    return [path for path in schema["paths"] if path.startswith("/lab")]


@pytest.mark.parametrize("name", FAMILIES + LIBRARIES)
def test_serve_without_lab_exposes_no_lab_path(
    name: str, serve: Callable[[str], VariantServer]
) -> None:
    server = serve(name)
    assert httpx.get(f"{server.base_url}/lab/pool").status_code == 404
    assert httpx.get(f"{server.base_url}/lab/sleep", params={"seconds": 0}).status_code == 404
    assert lab_paths(server) == []
    assert "/todos" in httpx.get(f"{server.base_url}/openapi.json").json()["paths"]


def test_an_inherited_lab_variable_does_not_mount_the_lab(
    db: DatabaseUrl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONBENCH_LAB", "1")  # only the --lab flag decides
    with VariantServer("depends", db, log_path=tmp_path / "s.log") as server:
        assert httpx.get(f"{server.base_url}/lab/pool").status_code == 404


def test_serve_with_lab_mounts_it_outside_the_schema(lab_server: VariantServer) -> None:
    response = httpx.get(f"{lab_server.base_url}/lab/pool")
    assert response.status_code == 200 and "checked_out" in response.json()
    assert lab_paths(lab_server) == []


def test_lab_sleep_is_bounded(lab_server: VariantServer) -> None:
    url = f"{lab_server.base_url}/lab/sleep"
    assert httpx.get(url, params={"seconds": 0.01}).status_code == 200
    assert httpx.get(url, params={"seconds": SECONDS_MAX + 1}).status_code == 422
    assert httpx.get(url, params={"seconds": 29}).status_code == 422
