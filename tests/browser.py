"""Open a report page in headless Chromium (Debian's chromium and chromium-driver packages,
installed by `make browser`) and read back what a reader would see.

python -m tests.browser results/report/index.html docs/images/report.png   # the README's screenshot
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@dataclass
class PageCheck:
    images: list[tuple[str, int]]  # src, naturalWidth (0: not loaded)
    claim_rows: int
    console: list[dict]  # console messages of level SEVERE


def inspect_page(page: Path, screenshot: Path | None = None, width: int = 1280, height: int = 1600) -> PageCheck:
    """Load `page` from disk with networking off, wait for it, and report images, claims and
    console errors; save a screenshot of the top of the page if asked."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
        "--no-first-run",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        driver.set_page_load_timeout(60)
        driver.get(Path(page).resolve().as_uri())  # returns once the load event fired: images included
        images = driver.execute_script(
            "return Array.from(document.images, image => [image.getAttribute('src'), image.naturalWidth]);"
        )
        rows = driver.execute_script("return document.querySelectorAll('#claims-table tbody tr').length;")
        console = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        if screenshot is not None:
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(screenshot))
    finally:
        driver.quit()
    return PageCheck(images=[(src, int(natural)) for src, natural in images], claim_rows=int(rows), console=console)


if __name__ == "__main__":
    check = inspect_page(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
    broken = [src for src, natural in check.images if natural == 0]
    print(
        f"{len(check.images)} images ({len(broken)} broken), {check.claim_rows} claims, "
        f"{len(check.console)} console errors"
    )
    sys.exit(1 if broken or check.console else 0)
