"""The report of the committed reference (old run.json fields), and its index.html in a browser.

The page is opened from disk in headless Chromium (Debian's ``chromium`` package) with a
probe script added to a copy of it: every image must load and nothing may reach the
console. ``scripts/test`` installs Chromium where it is missing and it can (root, apt-get);
skipped, with the reason, only where it cannot.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.common.results import ROOT
from bench.report.document import build

REFERENCE = ROOT / "results" / "reference"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NO_CHROMIUM = (
    "chromium is not installed, and scripts/test could not install it here (it needs root and "
    "apt-get): apt-get install chromium"
)
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom",
]  # fmt: skip

PROBE = """<script>
const sbErrors = [];
for (const level of ['error', 'warn']) {
  const original = console[level];
  console[level] = (...args) => {
    sbErrors.push(level + ': ' + args.join(' '));
    original(...args);
  };
}
window.addEventListener('error', e => sbErrors.push('error: ' + (e.message ||
  (e.target && (e.target.src || e.target.href)) || 'unknown')), true);
window.addEventListener('load', () => {
  const broken = [...document.images]
    .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
  document.body.setAttribute('data-images', String(document.images.length));
  document.body.setAttribute('data-broken', JSON.stringify(broken));
  document.body.setAttribute('data-errors', JSON.stringify(sbErrors));
});
</script>"""


# The tests of the committed reference are slow: rebuilding its report (every figure) is
# about a minute of one worker on an idle machine. The fast subset still builds reports
# (tests/report/test_scorecard.py: order of scorecard, figures and tables in report.md and
# index.html) and renders Markdown in Chromium (test_index_html_renders_the_markdown_it_means).
@pytest.fixture(scope="module")
def reference_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of results/reference with its report rebuilt by this code (never written in place)."""
    if not (REFERENCE / "run.json").exists():
        pytest.skip("results/reference/run.json is not in this checkout")
    folder = tmp_path_factory.mktemp("reference") / "reference"
    shutil.copytree(REFERENCE, folder, ignore=shutil.ignore_patterns("plots", "*.md", "*.html"))
    build(folder)
    return folder


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_report_of_the_committed_reference_leads_with_the_scorecard(
    reference_report: Path,
) -> None:
    report = (reference_report / "report.md").read_text()
    headings = re.findall(r"^## (.+)$", report, re.MULTILINE)
    assert headings[0] == "Scorecard"
    first_table = report.index("\n| ")
    assert first_table < report.index("![")  # the scorecard is the first thing shown
    start = report.index("## Scorecard")
    scorecard = report[start : report.index("\n## ", start)]
    doc = json.loads((reference_report / "run.json").read_text())
    for series in doc["settings"]["series"]:
        if doc["variants"][series].get("kind") == "calibration":
            assert f"\n| {series} |" not in scorecard  # co-scheduled only: no solo row
        else:
            assert f"\n| {series} |" in scorecard
    # derived advice (bench/report/advice.py): the deadlock is a result, its rules are stated
    assert "| avoid: deadlocks at 128 users (40 threads wait for 10 connections" in scorecard
    assert "The last column follows fixed rules" in scorecard
    # built without the overload folder: tails are not read from this run's short windows
    assert "p99.9 · max and fairness: not measured in long windows" in scorecard
    # Figures first, then every table of cells.
    last_figure = report.rindex("![")
    assert report.index("## Every series against depends") > report.index("](plots/overhead.png)")
    assert report.index("## Every cell") > report.index("](plots/throughput-write.png)")
    assert last_figure < report.index("## Every cell")
    assert "less noisy" not in report


def _probe(folder: Path, page: str, name: str) -> tuple[dict[str, object], str]:
    probe = folder / name
    probe.write_text(page.replace("<head>", "<head>" + PROBE, 1))
    profile = folder / f".chromium-{name}"
    done = subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", probe.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    body = re.search(r"<body([^>]*)>", done.stdout)
    assert body, f"chromium printed no DOM (exit {done.returncode}): {done.stderr[-500:]}"
    attrs = {
        k: json.loads(v.replace("&quot;", '"'))
        for k, v in re.findall(r'data-(\w+)="([^"]*)"', body.group(1))
    }
    console = "\n".join(line for line in done.stderr.splitlines() if ":CONSOLE" in line)
    return attrs, console


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_index_html_loads_every_image_without_console_errors(reference_report: Path) -> None:
    page = (reference_report / "index.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) >= 10
    seen, console = _probe(reference_report, page, "probe.html")
    assert seen == {"images": len(sources), "broken": [], "errors": []}
    assert console == ""
    # The probe can fail: a missing image is reported as broken.
    missing = page.replace(sources[0], "plots/missing.png", 1)
    seen, _ = _probe(reference_report, missing, "probe-missing.html")
    assert seen["broken"] == ["plots/missing.png"]


RENDER_PROBE = """<script>
window.addEventListener('load', () => {
  const text = document.body.innerText;
  const bold = [...document.querySelectorAll('strong')]
    .filter(s => Number(getComputedStyle(s).fontWeight) >= 600).map(s => s.textContent);
  document.body.setAttribute('data-marks', JSON.stringify(
    ['**', '`'].filter(m => text.includes(m))));
  document.body.setAttribute('data-bold', JSON.stringify(bold));
  document.body.setAttribute('data-code', String(document.querySelectorAll('li code').length));
  document.body.setAttribute('data-links', JSON.stringify(
    [...document.querySelectorAll('p a')].map(a => a.getAttribute('href'))));
});
</script>"""


@pytest.mark.timeout(300)
@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_index_html_renders_the_markdown_it_means(tmp_path: Path) -> None:
    """The three questions' **question** shows bold, `names` as code, [links](…) as links:
    nothing of the Markdown is shown literally (issue 24)."""
    from bench.common.blocks import bullets, h2, p, to_html

    page = to_html(
        [
            h2("Three `questions`"),
            bullets(["**Does async buy me anything?** `sync_threadpool` against `context`: "
                     "x*y, 2 * 3 and <b>escaped</b>"]),
            p("Full report: [ref/report.md](ref/report.md); *use with care: no fan-out*."),
        ],
        "render",
    )  # fmt: skip
    assert "<b>escaped</b>" not in page  # text is escaped, only the Markdown becomes markup
    probe = tmp_path / "render.html"
    probe.write_text(page.replace("<head>", "<head>" + RENDER_PROBE, 1))
    done = subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", probe.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    body = re.search(r"<body([^>]*)>", done.stdout)
    assert body, f"chromium printed no DOM (exit {done.returncode}): {done.stderr[-500:]}"
    seen = {
        k: json.loads(v.replace("&quot;", '"'))
        for k, v in re.findall(r'data-(\w+)="([^"]*)"', body.group(1))
    }
    assert seen == {
        "marks": [],
        "bold": ["Does async buy me anything?"],
        "code": 2,
        "links": ["ref/report.md"],
    }
    assert "x*y, 2 * 3 and &lt;b&gt;escaped&lt;/b&gt;" in done.stdout  # left as written


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_reference_questions_render_bold_in_the_browser(reference_report: Path) -> None:
    page = (reference_report / "index.html").read_text()
    probe = reference_report / "render.html"
    probe.write_text(page.replace("<head>", "<head>" + RENDER_PROBE, 1))
    done = subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={reference_report / '.chromium-render'}",
         probe.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    body = re.search(r"<body([^>]*)>", done.stdout)
    assert body, done.stderr[-500:]
    seen = dict(re.findall(r'data-(\w+)="([^"]*)"', body.group(1)))
    assert json.loads(seen["marks"].replace("&quot;", '"')) == []
    assert "I followed FastAPI" in seen["bold"]
