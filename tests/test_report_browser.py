"""Every report opened in a real headless browser (Debian's Chromium, driven by Playwright), with the
network cut: a run's report, a comparison's and a sweep's. Each plot must draw (plotly's SVG in its
div), nothing may be fetched from anywhere, no script may fail, and hovering a plot must show values.
scripts/setup.sh installs Chromium; this test does not skip without it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from marginsim_cli import marginsim
from playwright.sync_api import sync_playwright

from simulation.runner import run_scenario
from simulation.scenario import Scenario, load_scenario

ROOT = Path(__file__).resolve().parent.parent
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    path = shutil.which("chromium")
    assert path, "chromium is missing: ./scripts/setup.sh installs Debian's"
    return path


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """A run (adversaries: every panel, a gas spike shaded), a comparison and a sweep, in process."""
    tmp = tmp_path_factory.mktemp("reports")
    sc = load_scenario(ROOT / "scenarios" / "adversaries.yaml")
    sc = Scenario.model_validate(
        {
            **sc.model_dump(),
            "blocks": 120,
            "base_fee": [{"start_block": 40, "end_block": 60, "gwei": 500}],
        }
    )
    code, _ = run_scenario(sc, tmp / "run", progress=False, backend="revm")
    assert code == 0
    compare = tmp / "compare"
    r = marginsim(
        "compare",
        "scenarios/crash.yaml",
        "--out",
        str(compare),
        "--blocks",
        "150",
        "--backend",
        "revm",
        "--no-progress",
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    sweep_file = tmp / "sweep.yaml"
    sweep_file.write_text(
        yaml.safe_dump(
            {
                "base": str(ROOT / "scenarios" / "crash.yaml"),
                "seeds": 2,
                "blocks": 100,
                "worst_reports": 1,
                "grid": {
                    "protocol.markets.ETH-USD.maintenance": [0.03, 0.04],
                    "keepers.0.latency_blocks": [0, 2],
                },
            }
        )
    )
    r = marginsim(
        "sweep",
        str(sweep_file),
        "--out",
        str(tmp / "sweep"),
        "--workers",
        "2",
        "--no-progress",
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    return {
        "run": tmp / "run" / "report.html",
        "compare": compare / "report.html",
        "sweep": tmp / "sweep" / "report.html",
    }


def _hover_shows_values(page, box) -> bool:
    """Move over the plot area on a grid until plotly shows a hover label (unified or per point)."""
    for fx in (0.5, 0.3, 0.7, 0.1, 0.9, 0.2, 0.4, 0.6, 0.8):
        for fy in (0.5, 0.8, 0.2, 0.65, 0.35, 0.95, 0.05):
            page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
            page.wait_for_timeout(60)
            if page.evaluate(
                "document.querySelector('div.plot .hoverlayer').childElementCount > 0"
            ):
                return True
    return False


@pytest.mark.parametrize("kind", ["run", "compare", "sweep"])
def test_the_report_draws_in_a_browser_offline(reports, kind):
    path = reports[kind]
    fetched: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

            def cut(route) -> None:  # the network is cut: anything but the file itself fails
                if route.request.url != path.as_uri():
                    fetched.append(route.request.url)
                    route.abort()
                else:
                    route.continue_()

            page.route("**/*", cut)
            page.goto(path.as_uri(), wait_until="load")
            divs = page.locator("div.plot")
            n = divs.count()
            assert n >= {"run": 12, "compare": 10, "sweep": 8}[kind]
            page.wait_for_function(
                f"document.querySelectorAll('div.plot .main-svg').length >= {n}", timeout=30_000
            )
            for i in range(n):  # each plot drew its own SVG
                assert divs.nth(i).locator(".main-svg").count() >= 1, i
            # interactive: hovering the first plot's data shows its values
            first = divs.nth(0).locator(".nsewdrag").first
            first.scroll_into_view_if_needed()
            box = first.bounding_box()
            assert box is not None
            assert _hover_shows_values(page, box), "no hover label anywhere on the first plot"
        finally:
            browser.close()
    assert errors == [], errors
    assert fetched == [], fetched


def test_the_sweep_report_links_the_worst_paths_own_reports(reports):
    markup = re.sub(r"<script>.*?</script>", "", reports["sweep"].read_text(), flags=re.S)
    links = re.findall(r'<a href="([^"]+)">', markup)
    assert links, "no links to the worst paths"
    for href in links:
        assert (reports["sweep"].parent / href).is_file(), href
