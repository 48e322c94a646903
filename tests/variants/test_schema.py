"""The OpenAPI schema says what the servers answer: error statuses, PATCH body, titles, Allow."""

import re
from collections.abc import Callable

import httpx
import pytest

from bench.common.server import VariantServer
from variants.schemas import CONTRACT_ERRORS, TodoCreate, _title_pattern

FAMILIES = ["scoped", "depends", "context", "core", "raw"]


@pytest.mark.parametrize("name", FAMILIES)
def test_every_contract_error_is_documented_with_its_body(
    name: str, serve: Callable[[str], VariantServer]
) -> None:
    schema = httpx.get(f"{serve(name).base_url}/openapi.json").json()
    for (method, path), statuses in CONTRACT_ERRORS.items():
        responses = schema["paths"][path][method.lower()]["responses"]
        for status in statuses:
            ref = responses[str(status)]["content"]["application/json"]["schema"]["$ref"]
            body = "ValidationErrorBody" if status == 422 else "ErrorBody"
            assert ref == f"#/components/schemas/{body}", (method, path, status)
    assert "Location" in schema["paths"]["/todos"]["post"]["responses"]["201"]["headers"]
    update = schema["components"]["schemas"]["TodoUpdate"]
    assert update["minProperties"] == 1 and update["additionalProperties"] is False
    assert "null" not in str(update["properties"]) and "None" not in str(update["properties"])


@pytest.mark.parametrize("name", FAMILIES)
def test_405_names_every_method_of_the_path(
    name: str, serve: Callable[[str], VariantServer]
) -> None:
    base = serve(name).base_url
    for method, path, allowed in [
        ("OPTIONS", "/todos/1", "DELETE, GET, PATCH"),
        ("PUT", "/todos", "GET, POST"),
        ("POST", "/todos/1/multi", "GET"),
    ]:
        response = httpx.request(method, f"{base}{path}")
        assert response.status_code == 405
        assert response.headers["allow"] == allowed, (method, path)
        assert response.json() == {"detail": "Method Not Allowed"}


@pytest.mark.parametrize("name", FAMILIES)
def test_a_body_that_is_not_utf8_json_is_422(
    name: str, serve: Callable[[str], VariantServer]
) -> None:
    base = serve(name).base_url
    headers = {"content-type": "application/json"}
    for body in (b'{"title": "\xff"}', b"/C($\xef\xbf"):
        response = httpx.post(f"{base}/todos", content=body, headers=headers)
        assert response.status_code == 422, body
        assert response.json()["detail"][0]["type"] == "json_invalid"
    response = httpx.patch(f"{base}/todos/1", json={"done": None})
    assert response.status_code == 422  # the schema has no null either


TITLES = [
    "a", " a ", "   ", "", "x" * 200, " \t" + "x" * 200 + "\n", "x" * 201, "a\x00b", "\x00",
    "\x1c", " \x1c ", "\u3000a\u3000", "\u2028", "a\nb", "\ufeff", "é" * 200, " \x85x\xa0 ",
]  # fmt: skip


@pytest.mark.parametrize("title", TITLES)
def test_the_title_pattern_accepts_exactly_what_validation_accepts(title: str) -> None:
    try:
        TodoCreate(title=title)
        accepted = True
    except ValueError:
        accepted = False
    assert bool(re.match(_title_pattern(), title)) is accepted, repr(title)
