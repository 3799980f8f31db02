"""`python -m benchmarks.report_browser RUN ... [--width 1280] [--screenshot FILE]`: the report in a real browser.

Renders benchmarks.report's page for the runs, loads a copy of it (with one measuring script added; the report
itself has none) in headless Chromium at the given window width and checks what a reader would see: the page
is no wider than the window (`scrollWidth <= clientWidth`) and no element outside a scrolling container
(`div.scroll`) reaches past the window's right edge. Writes a screenshot where --screenshot says. Needs a
Chromium binary (`chromium-headless-shell`, `chromium` or `google-chrome` on PATH; on Debian
`apt-get install chromium-headless-shell`); without one it says so in one line and exits 2.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.cli import OneLineParser, fail
from benchmarks.report import ReportConfig, write_report
from lth_core.config import opt
from lth_core.errors import UsageError

PROG = "python -m benchmarks.report_browser"
BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MEASURE = """<script>
(() => {
  const root = document.documentElement, width = root.clientWidth;
  const out = [...document.querySelectorAll("body *")]
    .filter(e => !e.closest(".scroll") || e.classList.contains("scroll"))
    .filter(e => e.getBoundingClientRect().right > width + 0.5)
    .map(e => e.tagName.toLowerCase() + (e.className ? "." + e.className : ""));
  document.body.setAttribute("data-layout", JSON.stringify(
    {scrollWidth: root.scrollWidth, clientWidth: width, overflowing: out,
     scrollers: document.querySelectorAll("div.scroll").length, tables: document.querySelectorAll("table").length}));
})();
</script>"""


@dataclass
class BrowserCheck:
    """Check the report of these runs in headless Chromium."""

    runs: list[str] = opt([], "run folders", positional=True, custom_args={"nargs": "+", "metavar": "RUN"})
    width: int = opt(1280, "browser window width in CSS pixels")
    screenshot: str = opt("", "write a screenshot of the page's top here (PNG)")
    height: int = opt(2400, "screenshot height in pixels")


def browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def _run(exe: str, *args: str) -> str:
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise UsageError(f"{exe} failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout


def layout(page: Path, width: int, exe: str) -> dict:
    """What the measuring script saw in the browser: widths, overflowing elements, scrollers and tables."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "page.html"
        probe.write_text(page.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"), encoding="utf-8")
        dom = _run(exe, f"--window-size={width},900", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    found = re.search(r'data-layout="([^"]*)"', dom)
    if not found:
        raise UsageError("the browser did not run the measuring script (no data-layout in the DOM it dumped)")
    return json.loads(html.unescape(found.group(1)))


def screenshot(page: Path, width: int, height: int, out: Path, exe: str) -> None:
    _run(exe, f"--window-size={width},{height}", f"--screenshot={out.resolve()}", page.resolve().as_uri())


def check(cfg: BrowserCheck) -> dict:
    exe = browser()
    if exe is None:
        raise UsageError(f"no Chromium here (looked for {', '.join(BROWSERS)} on PATH)")
    with tempfile.TemporaryDirectory() as tmp:
        page = write_report(ReportConfig(runs=cfg.runs, out=str(Path(tmp) / "report.html")))
        seen = layout(page, cfg.width, exe)
        if cfg.screenshot:
            screenshot(page, cfg.width, cfg.height, Path(cfg.screenshot), exe)
    seen["fits"] = seen["scrollWidth"] <= seen["clientWidth"] and not seen["overflowing"]
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog=PROG, description=__doc__)
    parser.add_arguments(BrowserCheck, dest="cfg")
    try:
        seen = check(parser.parse_args(list(sys.argv[1:] if argv is None else argv)).cfg)
    except UsageError as e:
        fail(str(e))
    print(json.dumps(seen))
    return 0 if seen["fits"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
