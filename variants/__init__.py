"""The registry of variants: every runner, test, plot and report loops over ``VARIANTS``.

Adding a strategy is one new module exposing ``app`` (and, for the micro-benchmarks, what its
``Micro`` declares) plus one entry below (``variants.declaration``). A variant's label is the
first line of its module docstring. Variants from outside the suite (a file, an entry point:
``variants.external``) join after the built-in ones. A ``library`` variant names the PyPI
package it shows (its version goes into run.json); one whose pins conflict with the main
environment names its own ``environment`` (``variants/envs/<name>.txt``, see
``bench.common.environments``) and is served, verified and benchmarked from that venv only.
"""

from pathlib import Path

from variants import external
from variants.declaration import Kind, Micro, Variant

__all__ = [
    "VARIANTS",
    "Kind",
    "Micro",
    "Variant",
    "built_in",
    "get",
    "measured",
    "use_entry_points",
    "use_files",
]

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in [
        Variant(
            "scoped",
            "variants.scoped",
            "strategy",
            micro=Micro(session=True, machinery=("scoped-middleware", "scoped-session")),
        ),
        Variant("depends", "variants.depends", "strategy", micro=Micro(True, ("depends",))),
        Variant("context", "variants.context", "strategy", micro=Micro(True, ("context",))),
        Variant("scoped_task", "variants.scoped_task", "strategy"),
        Variant(
            "scoped_basehttp",
            "variants.scoped_basehttp",
            "strategy",
            micro=Micro(machinery=("scoped-basehttp-session",)),
        ),
        Variant(
            "depends_function",
            "variants.depends_function",
            "strategy",
            micro=Micro(machinery=("depends-function",)),
        ),
        Variant(
            "depends_commit",
            "variants.depends_commit",
            "strategy",
            commits_after_response=True,
            micro=Micro(True, ("depends-commit",)),
        ),
        Variant(
            "depends_commit_function",
            "variants.depends_commit_function",
            "strategy",
            micro=Micro(machinery=("depends-commit-function",)),
        ),
        Variant("core", "variants.core", "baseline", orm=False),
        Variant("raw", "variants.raw", "baseline", orm=False, drivers=("asyncpg",)),
        Variant(
            "sync_threadpool",
            "variants.sync_threadpool",
            "baseline",
            threads=True,
            drivers=("psycopg",),
        ),
        Variant(
            "fastapi_async_sqlalchemy",
            "variants.fastapi_async_sqlalchemy",
            "library",
            library="fastapi-async-sqlalchemy",
        ),
        Variant(
            "advanced_alchemy", "variants.advanced_alchemy", "library", library="advanced-alchemy"
        ),
        Variant(
            "fastapi_sqla",
            "variants.fastapi_sqla",
            "library",
            library="fastapi-sqla",
            environment="fastapi_sqla",
            drivers=("asyncpg",),
        ),
        Variant("sqlmodel", "variants.sqlmodel", "library", library="sqlmodel", micro=Micro(True)),
        Variant("context_plus5", "variants.context_plus5", "calibration"),
        Variant("context_plus10", "variants.context_plus10", "calibration"),
    ]
}
_BUILT_IN = frozenset(VARIANTS)
for _variant in external.inherited():  # what the command that started this process found
    if _variant.name in _BUILT_IN:
        external.warn(
            f"variant {_variant.name} ({_variant.module}) left out: a built-in has that name"
        )
    else:
        VARIANTS[_variant.name] = _variant


def measured() -> list[str]:
    """Every variant but the calibration series (those join a run when asked for by name)."""
    return [name for name, v in VARIANTS.items() if v.kind != "calibration"]


def get(name: str) -> Variant:
    """The variant called *name*; KeyError names the known ones."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise KeyError(f"unknown variant {name!r} (known: {', '.join(VARIANTS)})") from None


def built_in(name: str) -> bool:
    """Whether *name* is one of the suite's own variants (not a file's or a package's)."""
    return name in _BUILT_IN


def use_entry_points() -> list[Variant]:
    """Add the variants of the installed packages' entry points (``sessionbench.variants``) to
    the registry, for this process and the ones it starts (the command line calls it)."""
    return external.use_entry_points(VARIANTS)


def use_files(paths: list[Path]) -> list[Variant]:
    """Add the variants of *paths* (``--variant FILE``) to the registry, for this process and
    the ones it starts; ExternalVariantError says why one cannot be used."""
    return external.use_files(paths, VARIANTS)
