"""Report building blocks: headings, paragraphs, tables, images, lists, rendered to Markdown
and to self-contained HTML, and the registry of report sections.

A command whose results belong in the report (the pitfall matrix, the cost table, the
pool histograms, the micro-benchmarks) builds its own section from these blocks and
registers it with :func:`register_section`; ``sessionbench report`` renders every
registered section whose data is in the run folder (bench/report/sections.py imports the
registering modules by name). So common imports no command, and no command imports the
report.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.common import run_folder

PLOTS = run_folder.PLOTS


@dataclass(frozen=True)
class Block:
    kind: str  # h1 h2 p table img list
    text: str = ""
    headers: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    items: tuple[str, ...] = ()


def h1(text: str) -> Block:
    return Block("h1", text)


def h2(text: str) -> Block:
    return Block("h2", text)


def p(text: str) -> Block:
    return Block("p", text)


def table(headers: list[str], rows: list[list[str]]) -> Block:
    return Block("table", headers=tuple(headers), rows=tuple(tuple(r) for r in rows))


def img(path: str, alt: str) -> Block:
    return Block("img", path, items=(alt,))


def bullets(items: list[str]) -> Block:
    return Block("list", items=tuple(items))


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if b.kind == "h1":
            out.append(f"# {b.text}")
        elif b.kind == "h2":
            out.append(f"## {b.text}")
        elif b.kind == "p":
            out.append(b.text)
        elif b.kind == "table":
            out.append("| " + " | ".join(b.headers) + " |")
            out.append("|" + "---|" * len(b.headers))
            out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in b.rows]
        elif b.kind == "img":
            out.append(f"![{b.items[0]}]({b.text})")
        elif b.kind == "list":
            out += [f"- {item}" for item in b.items]
        out.append("")
    return "\n".join(out)


_CODE = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_EM = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")


def inline(text: str) -> str:
    """The inline Markdown the blocks write (`code`, **bold**, *emphasis*, [text](url)) as
    HTML, everything else escaped; a code span's content is shown as written."""
    out = []
    last = 0
    for m in _CODE.finditer(text):
        out.append(_spans(text[last : m.start()]))
        out.append(f"<code>{html.escape(m.group(2).strip())}</code>")
        last = m.end()
    out.append(_spans(text[last:]))
    return "".join(out)


def _spans(text: str) -> str:
    text = html.escape(text, quote=False)
    text = _LINK.sub(lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>', text)
    text = _BOLD.sub(r"<strong>\1</strong>", text)
    return _EM.sub(r"<em>\1</em>", text)


def to_html(blocks: list[Block], title: str) -> str:
    e = html.escape
    body: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2"):
            body.append(f"<{b.kind}>{inline(b.text)}</{b.kind}>")
        elif b.kind == "p":
            body.append(f"<p>{inline(b.text)}</p>")
        elif b.kind == "table":
            head = "".join(f"<th>{inline(h)}</th>" for h in b.headers)
            rows = "".join(
                "<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in b.rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif b.kind == "img":
            body.append(f'<figure><img src="{e(b.text)}" alt="{e(b.items[0])}"></figure>')
        elif b.kind == "list":
            body.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in b.items) + "</ul>")
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
        "color:#222}table{border-collapse:collapse;margin:1em 0;font-size:.9em}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#f3f3f3}"
        "img{max-width:100%;border:1px solid #ddd}figure{margin:1em 0}"
        "code{background:#f3f3f3;padding:0 .2em;border-radius:3px}"
    )
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(title)}</title><style>{style}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


Section = Callable[[Path], tuple[list[Block], list[Path]]]
"""Given a run folder: the blocks of a report section and the files (plots) it wrote."""

SECTIONS: dict[str, Section] = {}


def register_section(name: str) -> Callable[[Section], Section]:
    """Decorator: add a report section (placed by bench/report/sections.py: ORDER)."""

    def add(section: Section) -> Section:
        SECTIONS[name] = section
        return section

    return add


ReadmeSummary = Callable[[Path, Path], list[Block]]
"""Given a run folder and its path relative to README: a short summary for README (or [])."""

README_SUMMARIES: dict[str, ReadmeSummary] = {}


def register_readme_summary(name: str) -> Callable[[ReadmeSummary], ReadmeSummary]:
    """Decorator: a command's summary of a run folder for README's generated section."""

    def add(summary: ReadmeSummary) -> ReadmeSummary:
        README_SUMMARIES[name] = summary
        return summary

    return add


def write_report(folder: Path, blocks: list[Block], title: str) -> list[Path]:
    """*blocks* as the folder's report.md and index.html; the two paths written."""
    files = run_folder.RunFolder(folder)
    files.report.write_text(to_markdown(blocks))
    files.index.write_text(to_html(blocks, title))
    return [files.report, files.index]
