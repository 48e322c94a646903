"""Which package a C function's instructions belong to, from its object file and source file.

CPython 3.11 runs Python code inside ``_PyEval_EvalFrameDefault``: a callgrind dump has no
Python frames (3.12's perf trampoline writes a perf map, which valgrind does not read
either). So the pure-Python packages (fastapi, starlette, uvicorn, anyio, most of
sqlalchemy, asyncio's Python half) cannot be told apart: their work is the interpreter's
groups. What *can* be named is compiled code, by the object file that holds it: Cython
(asyncpg, uvloop, httptools, sqlalchemy's ``*_cy`` modules), Rust (pydantic_core), C
(greenlet, ``_asyncio``); and the interpreter's own work by CPython source file.
"""

from __future__ import annotations

import re

INTERPRETER = "interpreter"
_SITE = re.compile(r"/site-packages/([^/]+)/")
_RENAME = {"psycopg_c": "psycopg", "psycopg_binary": "psycopg"}
_CPYTHON_FILES = (
    ("Python/ceval.c", "eval loop"),
    ("Modules/gcmodule.c", "GC"),
    ("Objects/obmalloc.c", "allocator"),
    ("Objects/", "objects"),
)


def group_of(obj: str, file: str) -> str:
    """``asyncpg``, ``interpreter: eval loop``, ``libc``, … for a function in *obj* (the
    dump's ``ob=``) defined in *file* (its ``fl=``)."""
    site = _SITE.search(obj)
    if site:
        top = site.group(1)
        return _RENAME.get(top, top)
    base = obj.rsplit("/", 1)[-1]
    if "/lib-dynload/" in obj:
        return "asyncio (C)" if base.startswith("_asyncio.") else "stdlib C modules"
    if base.startswith(("libpython", "python")):
        for suffix, group in _CPYTHON_FILES:
            if suffix in file:
                return f"{INTERPRETER}: {group}"
        return f"{INTERPRETER}: runtime"
    if base.startswith("libc.") or base.startswith("libm."):
        return "libc"
    if base.startswith("ld-linux"):
        return "dynamic linker"
    return "other"


def package_of(group: str) -> str:
    """The package row a group adds to: the interpreter's groups are one package."""
    return INTERPRETER if group.startswith(f"{INTERPRETER}:") else group


def short_object(obj: str) -> str:
    """``protocol`` for ``…/asyncpg/protocol/protocol.cpython-311-x86_64-linux-gnu.so``."""
    base = obj.rsplit("/", 1)[-1]
    return base.split(".", 1)[0] or base
