"""Variants from outside the suite: a file (``--variant path/to/my_variant.py``) or an installed
package's entry point (group ``sessionbench.variants``). ``docs/extending.md`` shows one.

Either way it is a module that builds its ``app`` and declares itself at top level::

    VARIANT = Variant("mine", __name__, "strategy", micro=Micro(session=True))

The declaration is read from the source without running the module (its import builds the
app, which needs ``DATABASE_URL``): the right-hand side is evaluated on its own, with
``Variant``, ``Micro`` and ``__name__`` as its only names. An entry point names the module
(``mine = "my_package.my_variant"``), its name is the variant's.

The command line looks for both (``use_entry_points``, ``use_files``) and passes what it
found to every process the suite starts through the environment (``MODULES_ENV``,
``FILES_ENV``: servers, uvicorn's worker processes, the valgrind-counted processes, the
micro-benchmarks' pytest); ``import variants`` reads them there (``inherited``), so a child
neither scans the installed packages nor needs the flags. A file's module is importable by
its file name (``my_variant``): ``import variants`` installs a finder for the files.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from variants.declaration import KINDS, Micro, Variant

if TYPE_CHECKING:  # importlib.metadata is imported when used: ``import variants`` stays light
    from importlib.metadata import EntryPoint

FILES_ENV = "SESSIONBENCH_VARIANT_FILES"
"""The variant files of this run, absolute, ``os.pathsep``-separated (set by ``use_files``)."""
MODULES_ENV = "SESSIONBENCH_VARIANT_MODULES"
"""The entry points' variants, ``name=module`` comma-separated (set by ``use_entry_points``)."""
GROUP = "sessionbench.variants"
DECLARATION = "VARIANT"


class ExternalVariantError(ValueError):
    """A variant file or entry point that cannot be used; the message is one line saying why."""


class _FileFinder:
    """Imports the variant files by module name (the file name without ``.py``): a meta path
    finder (not subclassing ``importlib.abc``, whose import costs ~25 ms: every process pays it)."""

    def __init__(self) -> None:
        self.files: dict[str, Path] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        found = self.files.get(fullname)
        return None if found is None else importlib.util.spec_from_file_location(fullname, found)


_finder = _FileFinder()


def declared(source: Path, module: str) -> Variant:
    """The ``VARIANT = …`` declaration of *source*, whose module is named *module*."""
    try:
        tree = ast.parse(source.read_text(), str(source))
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        raise ExternalVariantError(f"variant file {source}: cannot read it: {exc}") from None
    found = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == DECLARATION for t in node.targets)
    ]
    if not found:
        raise ExternalVariantError(
            f"variant file {source} declares no {DECLARATION} = Variant(...) at top level"
        )
    names = {"__builtins__": {}, "Variant": Variant, "Micro": Micro, "__name__": module}
    try:
        code = compile(ast.Expression(found[-1]), str(source), "eval")
        variant = eval(code, names)
    except Exception as exc:
        raise ExternalVariantError(
            f"variant file {source}: {DECLARATION} must be built from literals, Variant(...), "
            f"Micro(...) and __name__ only ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(variant, Variant):
        raise ExternalVariantError(f"variant file {source}: {DECLARATION} is not a Variant")
    if variant.module != module:
        raise ExternalVariantError(
            f"variant file {source}: its module is {module!r}, not {variant.module!r} "
            "(write __name__)"
        )
    if variant.kind not in KINDS:
        raise ExternalVariantError(
            f"variant {variant.name}: kind {variant.kind!r} is not one of {', '.join(KINDS)}"
        )
    if variant.environment is not None:
        raise ExternalVariantError(
            f"variant {variant.name}: an external variant runs in the suite's environment "
            "(no environment=)"
        )
    return variant


def from_file(path: Path) -> Variant:
    """The variant of *path*, its module made importable under the file's name."""
    path = path.resolve()
    if path.suffix != ".py" or not path.is_file():
        raise ExternalVariantError(f"variant file {path} is not a .py file")
    module = path.stem
    if not module.isidentifier():
        raise ExternalVariantError(f"variant file {path}: {module!r} is not a module name")
    if _finder.files.get(module, path) != path:
        raise ExternalVariantError(
            f"variant file {path}: another variant file is named {module}.py already"
        )
    if module not in _finder.files:
        taken = _spec(module, f"variant file {path}")
        origin = Path(taken.origin).resolve() if taken and taken.origin else None
        if taken is not None and origin != path:
            raise ExternalVariantError(
                f"variant file {path}: module name {module!r} is taken by "
                f"{origin or 'a built-in module or a package'}; rename the file"
            )
    variant = declared(path, module)
    _finder.files[module] = path
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
    return variant


def from_entry_point(entry: EntryPoint) -> Variant:
    """The variant of an entry point of ``GROUP`` (its value: a module name)."""
    if entry.attr:
        raise ExternalVariantError(
            f"entry point {entry.name} = {entry.value!r} of {GROUP}: name a module, not an object"
        )
    spec = _spec(entry.module, f"entry point {entry.name}")
    if spec is None or spec.origin is None:
        raise ExternalVariantError(f"entry point {entry.name}: module {entry.module} not found")
    variant = declared(Path(spec.origin), entry.module)
    if variant.name != entry.name:
        raise ExternalVariantError(
            f"entry point {entry.name} of {GROUP} declares a variant named {variant.name!r}"
        )
    return variant


def _spec(module: str, what: str) -> importlib.machinery.ModuleSpec | None:
    """``find_spec`` (which imports a dotted name's parents): their failure is one line."""
    try:
        return importlib.util.find_spec(module)
    except Exception as exc:
        raise ExternalVariantError(f"{what}: cannot look up {module}: {exc}") from None


def inherited() -> list[Variant]:
    """The variants of ``MODULES_ENV`` and ``FILES_ENV``; one that cannot be used is left out
    with a one-line warning (the registry must still load)."""
    sources: list[tuple[str, Path | EntryPoint]] = []
    if _listed(MODULES_ENV, ","):
        from importlib.metadata import EntryPoint

        sources += [
            (f"entry point {name}", EntryPoint(name, module, GROUP))
            for name, _, module in (pair.partition("=") for pair in _listed(MODULES_ENV, ","))
        ]
    sources += [(f"variant file {p}", Path(p)) for p in files()]
    found = []
    for what, source in sources:
        try:
            found.append(
                from_file(source) if isinstance(source, Path) else from_entry_point(source)
            )
        except ExternalVariantError as exc:
            warn(f"{what} left out: {exc}")
    return found


def use_entry_points(known: dict[str, Variant]) -> list[Variant]:
    """Add the variants of the installed packages' entry points (group ``GROUP``) to *known*
    and to ``MODULES_ENV``; one that cannot be used is left out with a one-line warning."""
    from importlib.metadata import entry_points

    added = []
    for entry in entry_points(group=GROUP):
        try:
            variant = from_entry_point(entry)
            if known.get(variant.name, variant) != variant:
                raise ExternalVariantError(f"the name {variant.name!r} is taken")
        except ExternalVariantError as exc:
            warn(f"entry point {entry.name} left out: {exc}")
            continue
        known[variant.name] = variant
        added.append(variant)
        pair = f"{variant.name}={variant.module}"
        if pair not in _listed(MODULES_ENV, ","):
            os.environ[MODULES_ENV] = ",".join([*_listed(MODULES_ENV, ","), pair])
    return added


def _listed(env: str, separator: str) -> list[str]:
    return [item for item in os.environ.get(env, "").split(separator) if item]


def warn(message: str) -> None:
    """One line on stderr (a warning does not stop the registry from loading)."""
    print(f"sessionbench: warning: {message}", file=sys.stderr)


def files() -> list[str]:
    """The paths in ``FILES_ENV``."""
    return _listed(FILES_ENV, os.pathsep)


def use_files(paths: Iterable[Path], known: dict[str, Variant]) -> list[Variant]:
    """Load the variant files of *paths* into *known* (the registry) and into ``FILES_ENV``,
    so every process the suite starts from here loads them too."""
    added = []
    for path in paths:
        variant = from_file(path)
        if known.get(variant.name, variant) != variant:
            raise ExternalVariantError(
                f"variant file {path}: the name {variant.name!r} is taken; choose another"
            )
        known[variant.name] = variant
        added.append(variant)
        resolved = str(path.resolve())
        if resolved not in files():
            os.environ[FILES_ENV] = os.pathsep.join([*files(), resolved])
    return added
