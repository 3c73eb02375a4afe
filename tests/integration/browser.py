"""A real browser for the dashboard's tests: Debian's chromium, headless, driven by selenium
through Debian's chromium-driver (scripts/engine.sh installs both; nothing is downloaded: the
driver and the browser are named, so selenium never runs its own driver manager)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = Path("/usr/bin/chromedriver")
# What works here as root: no sandbox (root), no GPU, nothing fetched in the background.
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,900",
)
T = TypeVar("T")


def missing() -> str | None:
    """Why no browser test can run here (None: chromium, its driver and selenium are there)."""
    for path in (CHROMIUM, DRIVER):
        if not path.exists():
            return f"{path} is missing: run scripts/engine.sh (it installs chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is missing: pip install -e '.[dev]'"
    return None


@contextmanager
def chromium(*, downloads: Path | None = None) -> Iterator[Any]:
    """A headless chromium (a fresh profile) under selenium; quit and removed afterwards."""
    os.environ.setdefault("SE_OFFLINE", "true")  # never ask the network for drivers
    os.environ.setdefault("SE_AVOID_STATS", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = Path(tempfile.mkdtemp(prefix="labup-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    if downloads is not None:
        options.add_experimental_option("prefs", {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
        })
    service = Service(executable_path=str(DRIVER), log_output=subprocess.DEVNULL)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(what: Callable[[], T], *, timeout: float = 30.0, every: float = 0.2,
             message: str = "") -> T:
    """Poll ``what`` until it returns something true; fail with ``message`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = what()
        except Exception as e:  # a stale element between two renders: try again
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s: {message} (last: {last!r})")
        time.sleep(every)


def save_screenshot(driver: Any, path: Path) -> Path:
    """A PNG of the page; also copied to $LABUP_DASHBOARD_SCREENSHOTS (how docs/ gets them)."""
    driver.save_screenshot(str(path))
    extra = os.environ.get("LABUP_DASHBOARD_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)
    return path


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
