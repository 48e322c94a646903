"""The variant registry: names, labels, and that each entry is a servable app."""

import importlib

import pytest
from fastapi import FastAPI

import variants


def test_lists_required_strategies_and_baselines() -> None:
    assert {"scoped", "depends", "context", "core", "raw"} <= set(variants.VARIANTS)
    assert {v.kind for v in variants.VARIANTS.values()} == {"strategy", "baseline"}


@pytest.mark.parametrize("name", list(variants.VARIANTS))
def test_each_variant_exposes_an_app_and_a_label(name: str, db) -> None:
    variant = variants.get(name)
    module = importlib.import_module(variant.module)
    assert isinstance(module.app, FastAPI)
    assert variant.label and "\n" not in variant.label
    assert variant.app == f"{variant.module}:app"


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(KeyError, match=r"unknown variant 'nope'.*scoped"):
        variants.get("nope")
