"""The variant registry: names, labels, and that each entry is a servable app."""

import importlib
import os
import re
import subprocess

import pytest
from fastapi import FastAPI

import variants
from bench.common import environments


def test_lists_required_strategies_and_baselines() -> None:
    assert {"scoped", "depends", "context", "core", "raw"} <= set(variants.VARIANTS)
    assert {v.kind for v in variants.VARIANTS.values()} == {
        "strategy",
        "baseline",
        "library",
        "calibration",
    }


@pytest.mark.parametrize("name", list(variants.VARIANTS))
def test_each_variant_exposes_an_app_and_a_label(name: str, db) -> None:
    variant = variants.get(name)
    if variant.environment is None:
        assert isinstance(importlib.import_module(variant.module).app, FastAPI)
    else:  # importable only by its own environment's interpreter
        check = f"import fastapi, {variant.module} as m; assert isinstance(m.app, fastapi.FastAPI)"
        python = environments.interpreter(variant)
        subprocess.run([python, "-c", check], env={**os.environ}, check=True, timeout=60)
    assert variant.label and "\n" not in variant.label
    assert variant.app == f"{variant.module}:app"


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(KeyError, match=r"unknown variant 'nope'.*scoped"):
        variants.get("nope")


def test_library_variants_name_their_package_and_pin_it() -> None:
    libraries = [v for v in variants.VARIANTS.values() if v.kind == "library"]
    assert {v.name for v in libraries} >= {
        "fastapi_async_sqlalchemy", "advanced_alchemy", "fastapi_sqla",
    }  # fmt: skip
    for variant in libraries:
        assert variant.library
        if variant.environment is not None:
            pins = environments.Environment(variant.environment).requirements.read_text()
        else:
            pins = (environments.ROOT / "pyproject.toml").read_text()
        assert re.search(rf"^\W*{re.escape(variant.library)}(\[\w+\])?==", pins, re.M), variant
