"""Open a report.html in Debian's headless Chromium (selenium driving the system browser and chromedriver,
which install.sh apt-installs) and read back what the page shows: every image's decoded width, the rows of
every table, and a full-page screenshot.

    python tests/headless_browser.py results/quickstart/report.html    # writes results/quickstart/report.png
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage")


def browser_paths() -> tuple[str, str] | None:
    """(chromium, chromedriver) from PATH, or None when either is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@dataclass
class PageView:
    title: str
    images: list[dict]  # {alt, complete, width}: width is naturalWidth, 0 for an image that did not decode
    table_rows: list[list[list[str]]]  # per table, its body rows' cell texts
    headings: list[str]


def view_page(html_path: Path, screenshot: Path | None = None, width: int = 1280) -> PageView:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    paths = browser_paths()
    if paths is None:
        raise RuntimeError("chromium and chromedriver are not on PATH (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    with tempfile.TemporaryDirectory(prefix="lejepa-chromium-") as profile:
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},900"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=paths[1]))
        try:
            driver.get(Path(html_path).resolve().as_uri())
            images = driver.execute_script(
                "return Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth}))")
            tables = driver.execute_script(
                "return Array.from(document.querySelectorAll('table')).map(t => Array.from(t.tBodies[0].rows)"
                ".map(r => Array.from(r.cells).map(c => c.textContent)))")
            headings = driver.execute_script("return Array.from(document.querySelectorAll('h2')).map(h => h.textContent)")
            if screenshot is not None:
                height = driver.execute_script("return document.documentElement.scrollHeight")
                driver.set_window_size(width, min(int(height) + 40, 16000))
                driver.save_screenshot(str(screenshot))
            return PageView(driver.title, images, tables, headings)
        finally:
            driver.quit()


if __name__ == "__main__":
    page = Path(sys.argv[1])
    view = view_page(page, page.with_name("report.png"))
    broken = [image["alt"] for image in view.images if not image["width"]]
    print(f"{page}: {len(view.images)} image(s), {len(broken)} not loaded {broken}; "
          f"table rows {[len(rows) for rows in view.table_rows]}; screenshot {page.with_name('report.png')}")
    sys.exit(1 if broken else 0)
