"""report.html in a real headless browser (Debian's chromium driven by playwright): the demo-size
report at a laptop (1,280 px) and a phone (390 px) width, and printed on A4, must not overflow
horizontally, every chart must be labelled for a screen reader, every table header must be a readable
label, the contents must lead somewhere, and the page must load nothing from a network.

Screenshots go to LINKAGE_SCREENSHOTS (a folder; CI keeps it as an artifact), else the test's temp folder.
`playwright install` cannot download a browser here, so the test drives the system chromium
(LINKAGE_CHROMIUM, else `chromium` on PATH): it skips, saying so, only when there is none and not on
CI (the CI variable set), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from fixtures_journeys import perfect_run
from linkage.journeys.build import build_journeys
from linkage.release.build import build_release
from linkage.synth import generate
from test_agency_pipeline import pseudonymise_all

ROOT = Path(__file__).parents[1]
DEMO_PERSONS = 2000  # the Makefile's PERSONS: the size of the report `make demo` publishes
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTHS = {"laptop": (1280, 800), "phone": (390, 844)}

# Returns every problem a reader (or a screen reader) would meet; [] when the page is sound.
PROBLEMS_JS = """() => {
  const out = [];
  const doc = document.documentElement;
  const inner = window.innerWidth;
  if (doc.scrollWidth > inner) out.push(`horizontal overflow: ${doc.scrollWidth} > ${inner}`);
  document.querySelectorAll('svg').forEach((svg, i) => {
    const ids = (svg.getAttribute('aria-labelledby') || '').split(/\\s+/).filter(Boolean);
    const title = svg.querySelector(':scope > title'), desc = svg.querySelector(':scope > desc');
    if (svg.getAttribute('role') !== 'img') out.push(`chart ${i}: no role="img"`);
    if (!title || !title.textContent.trim()) out.push(`chart ${i}: no <title>`);
    if (!desc || !desc.textContent.trim()) out.push(`chart ${i}: no <desc>`);
    if (!ids.length) out.push(`chart ${i}: no aria-labelledby`);
    ids.forEach(id => { const el = document.getElementById(id);
      if (!el || !svg.contains(el) || !el.textContent.trim()) out.push(`chart ${i}: ${id} is empty`); });
  });
  document.querySelectorAll('th').forEach(th => {
    const text = th.textContent.trim();
    if (/^[a-z0-9]+(_[a-z0-9]+)+$/.test(text)) out.push(`raw column name: ${text}`);
  });
  document.querySelectorAll('nav a[href^="#"]').forEach(a => {
    const target = a.getAttribute('href').slice(1);
    if (!document.getElementById(target)) out.push(`contents link ${target} leads nowhere`);
  });
  return out;
}"""


def _chromium() -> str | None:
    return os.environ.get("LINKAGE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    path = _chromium()
    if not path or not os.access(path, os.X_OK):
        reason = "no chromium browser (Debian: apt-get install -y chromium; `make venv` installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: the browser test must run on CI")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def report(keys, tmp_path_factory) -> Path:
    """The report of a demo-size release (perfect linkage of DEMO_PERSONS synthetic persons)."""
    base = tmp_path_factory.mktemp("browser")
    raw, extracts = base / "raw", base / "extracts"
    with pytest.MonkeyPatch.context() as mp:  # a module fixture runs before the per-test run log is set
        mp.setenv("LINKAGE_LOG", str(base / "log.jsonl"))
        generate(DEMO_PERSONS, 42, raw)
        pseudonymise_all(keys, raw, extracts)
        run = perfect_run(extracts, raw / "truth", base / "run", keys.signing_dir)
        build_journeys(run)
        out = build_release(run, ROOT / "configs" / "release.yaml", base / "release" / "r1").out_dir
    return out / "report.html"


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("LINKAGE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open(browser, url: str, width: int, height: int):
    """A page at this viewport that refuses (and records) every request that is not the file itself."""
    page = browser.new_page(viewport={"width": width, "height": height})
    fetched: list[str] = []

    def guard(route):
        if route.request.url != url:
            fetched.append(route.request.url)
            return route.abort()
        return route.continue_()

    page.route("**/*", guard)
    page.goto(url)
    return page, fetched


@pytest.mark.slow
@pytest.mark.parametrize("device", list(WIDTHS))
def test_report_fits_the_screen_with_labelled_charts_and_nothing_fetched(browser, report, shots, device):
    width, height = WIDTHS[device]
    page, fetched = _open(browser, report.as_uri(), width, height)
    try:
        assert page.evaluate(PROBLEMS_JS) == []
        assert fetched == []
        assert page.locator("svg").count() >= 4  # funnel, trend, force ranking, outcomes, times
        assert page.locator("nav a").count() >= 8
        page.screenshot(path=str(shots / f"report-{width}px-top.png"))
        page.screenshot(path=str(shots / f"report-{width}px-full.png"), full_page=True)
    finally:
        page.close()


@pytest.mark.slow
def test_report_prints_on_a4_without_overflow(browser, report, shots):
    page, _ = _open(browser, report.as_uri(), 794, 1123)  # A4 at 96 dpi
    try:
        page.emulate_media(media="print")
        assert page.evaluate(PROBLEMS_JS) == []
        page.pdf(path=str(shots / "report-a4.pdf"), format="A4")
        assert (shots / "report-a4.pdf").stat().st_size > 10_000
    finally:
        page.close()


def test_the_checks_fail_on_overflow_an_unlabelled_chart_and_a_raw_column_name(browser):
    """The negative control: the checks above would catch each fault."""
    page = browser.new_page(viewport={"width": 390, "height": 600})
    try:
        page.set_content(
            '<html><body><div style="width:900px">wide</div><svg width="10" height="10"><rect/></svg>'
            "<table><tr><th>days_to_outcome_median</th></tr></table>"
            '<nav><a href="#missing">x</a></nav></body></html>'
        )
        problems = " | ".join(page.evaluate(PROBLEMS_JS))
        for fault in (
            "horizontal overflow",
            'no role="img"',
            "no <title>",
            "no <desc>",
            "raw column name",
            "leads nowhere",
        ):
            assert fault in problems
    finally:
        page.close()
