"""One reference, one commit: refuse to produce reference results from a changed tree.

``scripts/reference`` runs ``python -m bench.common.provenance`` first. On a tree whose code
differs from its commit (modified, staged or untracked files outside ``results/``) it
prints one line and exits 2; with ``SESSIONBENCH_ALLOW_DIRTY=1`` it goes on and says
so, and every result file marks itself (``environment.git_dirty``, bench/common/results.py).
Every folder the reference writes records the same ``git_commit``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ALLOW_ENV = "SESSIONBENCH_ALLOW_DIRTY"


@dataclass(frozen=True)
class Tree:
    commit: str | None
    changed: list[str]  # paths that differ from the commit (results/ left out)


def tree(root: Path) -> Tree:
    """The commit checked out at *root* and what differs from it."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout

    commit = git("rev-parse", "HEAD").strip()
    status = git("status", "--porcelain", "--", ".", ":(exclude)results")
    return Tree(commit, [line[3:] for line in status.splitlines() if line.strip()])


def main(argv: list[str] | None = None) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[2]
    try:
        found = tree(root)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"sessionbench: error: not a git checkout, no commit to record: {exc}",
              file=sys.stderr)  # fmt: skip
        return 2
    if not found.changed:
        print(f"sessionbench: reference from commit {found.commit}", file=sys.stderr)
        return 0
    listed = ", ".join(found.changed[:3]) + (" …" if len(found.changed) > 3 else "")
    if os.environ.get(ALLOW_ENV) == "1":
        print(f"sessionbench: warning: {len(found.changed)} changed file(s) ({listed}): every "
              f"result is marked git_dirty (commit {found.commit})", file=sys.stderr)  # fmt: skip
        return 0
    print(f"sessionbench: error: the tree differs from commit {found.commit} in "
          f"{len(found.changed)} file(s) ({listed}): commit first (or {ALLOW_ENV}=1 to "
          "mark every result dirty)", file=sys.stderr)  # fmt: skip
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
