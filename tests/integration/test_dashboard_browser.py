"""`labup serve LAB -i INVENTORY` in a real browser (Debian's chromium, headless, selenium)
against the SSH classroom: the grid shows every learner (the unreachable one as such), a
learner's solution turns their row green within one round without a reload, a reset from the
page brings the row back, and whatever a learner's container says is shown as text."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import chromium, missing, save_screenshot, wait_for
from classroom import REQUIRE, Classroom, down_on, fleet, up_on
from served import Served, served

from provisioner.engine import labels as L

pytestmark = [pytest.mark.docker, pytest.mark.ssh, pytest.mark.fleet, pytest.mark.slow]

EVERY = 3  # seconds between rounds

SPEC = """\
apiVersion: labup/v1
kind: Lab
name: {name}
title: Greetings and notes
containers:
  web:
    image: labup-test/busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]
checks:
  - id: web-running
    description: The web container runs
    stage: env
    container: {{container: web, state: running}}
  - id: notes
    description: /tmp/notes exists
    hint: "touch /tmp/notes in the web container"
    exec: {{container: web, command: [test, -f, /tmp/notes]}}
  - id: greeting
    description: /tmp/greeting greets you by name
    hint: "echo 'hello {{{{ host.vars.learner }}}}' > /tmp/greeting"
    points: 2
    exec:
      container: web
      command: [cat, /tmp/greeting]
      stdout: "hello {{{{ host.vars.learner }}}}"
"""
HOSTILE = "<img src=x onerror=window.__pwned=1>"


@pytest.fixture(scope="module")
def browser_ready() -> None:
    reason = missing()
    if reason is not None:
        if REQUIRE:
            pytest.fail(f"no browser for the dashboard tests: {reason} (LABUP_REQUIRE_ENGINE=1)")
        pytest.skip(f"no browser for the dashboard tests: {reason}")


@pytest.fixture
def lab_up(classroom: Classroom, tmp_path: Path, unique: str) -> Iterator[tuple[str, Path]]:
    name = f"dash-{unique}"
    spec = tmp_path / "lab.yaml"
    spec.write_text(SPEC.format(name=name))
    try:
        assert fleet(classroom.good, up_on(spec, checks=False), parallel=3).failed == ()
        yield name, spec
    finally:
        fleet(classroom.good, down_on(name), parallel=3)
        for h in classroom.good:
            left = classroom.client(h.name).containers.list(
                all=True, filters={"label": f"{L.LAB}={name}"})
            assert left == []


def _inventory(classroom: Classroom, path: Path) -> Path:
    port = {h.name: h.port for h in (*classroom.good, *classroom.broken)}
    path.write_text(
        "apiVersion: labup/v1\nkind: Inventory\n"
        f"defaults: {{address: 127.0.0.1, user: root, key: {classroom.key}, "
        f"known_hosts: {classroom.known_hosts}}}\n"
        "hosts:\n"
        f"  h1: {{port: {port['h1']}, vars: {{learner: alice}}}}\n"
        f"  h2: {{port: {port['h2']}, vars: {{learner: bob}}}}\n"
        f"  h3: {{port: {port['h3']}, vars: {{learner: carol}}}}\n"
        f"  hdown: {{port: {port['hdown']}, vars: {{learner: '<b>dan</b>'}}}}\n"
    )
    return path


def _exec(classroom: Classroom, host: str, name: str, script: str) -> None:
    web = classroom.client(host).containers.get(f"{name}-web")
    assert web.exec_run(["sh", "-c", script]).exit_code == 0


# Rows are drawn again on every event: read the page in one script, not element by element.
ROWS_JS = """
return Array.from(document.querySelectorAll('#grid tbody tr')).map(tr => ({
  host: tr.dataset.host, classes: tr.className.split(' '), text: tr.innerText,
  cells: Object.fromEntries(Array.from(tr.querySelectorAll('td[data-check]')).map(
    td => [td.dataset.check, td.className.split(' ')]))}));
"""


DETAILS_JS = """
return {
  title: document.getElementById('learner-title').textContent,
  shown: !document.getElementById('learner-body').hidden,
  checks: Array.from(document.querySelectorAll('#learner-checks tbody tr')).map(tr => ({
    id: tr.dataset.check, status: tr.querySelector('td.cell').textContent,
    message: tr.querySelector('td.message').textContent,
    hint: tr.querySelector('td.hint').textContent,
    first: tr.querySelector('td.first').textContent})),
  containers: document.getElementById('learner-containers').innerText,
  images: document.querySelectorAll('main img, #grid b').length,
};
"""


def _details(driver: Any) -> dict[str, Any]:
    doc: dict[str, Any] = driver.execute_script(DETAILS_JS)
    return doc


def _rows(driver: Any) -> dict[str, dict[str, Any]]:
    return {r["host"]: r for r in driver.execute_script(ROWS_JS)}


def _classes(driver: Any, host: str) -> set[str]:
    row = _rows(driver).get(host)
    return set(row["classes"]) if row else set()


def _click(driver: Any, css: str) -> None:
    """Click what ``css`` finds (found again when a render replaced it in between)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def click() -> bool:
        try:
            driver.find_element(By.CSS_SELECTOR, css).click()
        except StaleElementReferenceException:
            return False
        return True

    wait_for(click, message=f"click {css}")


def _confirm(driver: Any, answer: str) -> str:
    """Answer the page's confirmation dialog (``ok`` or ``cancel``); returns its question."""
    from selenium.webdriver.common.by import By

    dialog = wait_for(lambda: driver.find_element(By.ID, "confirm"), message="the dialog")
    wait_for(lambda: dialog.get_attribute("open") is not None, message="the dialog opens")
    text = str(driver.find_element(By.ID, "confirm-text").text)
    driver.find_element(By.ID, f"confirm-{answer}").click()
    wait_for(lambda: dialog.get_attribute("open") is None, message="the dialog closes")
    return text


def test_the_dashboard_follows_the_class_live_in_a_real_browser(
    browser_ready: None, classroom: Classroom, lab_up: tuple[str, Path], tmp_path: Path
) -> None:

    name, spec = lab_up
    inventory = _inventory(classroom, tmp_path / "class.yml")
    _exec(classroom, "h2", name, "touch /tmp/notes")  # bob is half-way
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with served([str(spec), "-i", str(inventory), "--port", "0", "--every", f"{EVERY}s"]) as dash, \
            chromium(downloads=downloads) as driver:
        assert dash.token is None  # 127.0.0.1: no token
        driver.get(dash.url)

        # the grid: every learner, the unreachable one as such, names shown as text
        rows = wait_for(lambda: len(_rows(driver)) == 4 and _rows(driver),
                        message="four learners in the grid")
        assert list(rows) == ["h1", "h2", "h3", "hdown"]
        wait_for(lambda: "status-graded" in _classes(driver, "h1")
                 and "status-unreachable" in _classes(driver, "hdown"),
                 message="h1 graded, hdown unreachable")
        names = driver.execute_script(
            "return Array.from(document.querySelectorAll('#grid tbody .name'))"
            ".map(e => e.textContent);")
        assert names == ["alice", "bob", "carol", "<b>dan</b>"]  # text, not markup
        assert _details(driver)["images"] == 0
        down = _rows(driver)["hdown"]["text"]
        assert "unreachable: " in down and "cannot reach the SSH server" in down
        header = driver.execute_script(
            "return Array.from(document.querySelectorAll('#grid thead .check-id'))"
            ".map(e => e.textContent);")
        assert header == ["web-running", "notes", "greeting"]
        assert "all-pass" not in _classes(driver, "h1")
        wait_for(lambda: "pass" in _rows(driver)["h2"]["cells"]["notes"],
                 message="bob passes notes")
        # the objective most of the class is stuck on comes first
        first = driver.execute_script(
            "const li = document.querySelector('#objectives li.objective');"
            "return [li.dataset.check, li.innerText];")
        assert first[0] == "greeting"
        assert "most stuck" in first[1] and "0/3 pass" in first[1]

        # alice's solution runs on her machine: her row turns green within one round,
        # and the page was never reloaded
        driver.execute_script("window.__sameDocument = 42;")
        before = dash.state()["round"]["count"]
        _exec(classroom, "h1", name, "echo 'hello alice' > /tmp/greeting && touch /tmp/notes")
        wait_for(lambda: "all-pass" in _classes(driver, "h1"), timeout=60,
                 message="alice's row turns green")
        after = dash.state()["round"]["count"]
        assert after <= before + 2, (before, after)  # the round in progress, then one more
        assert driver.execute_script("return window.__sameDocument;") == 42
        alice = dash.learner("h1")
        assert alice["all_pass"] and (alice["score"], alice["total"]) == (4, 4)
        assert set(alice["first_passed"]) == {"web-running", "notes", "greeting"}

        # her details: messages, first passed times, containers
        _click(driver, '#grid tr[data-host="h1"]')
        details = wait_for(lambda: _details(driver)["shown"] and _details(driver),
                           message="alice's details")
        assert details["title"] == "alice (h1)"
        assert [c["id"] for c in details["checks"]] == ["web-running", "notes", "greeting"]
        assert all(c["status"] == "pass" and c["first"] != "\u2013"
                   for c in details["checks"]), details
        assert "web" in details["containers"] and "running" in details["containers"]
        save_screenshot(driver, tmp_path / "dashboard.png")

        # a hostile message from bob's container is shown as text, never run
        _exec(classroom, "h2", name, f"echo '{HOSTILE}' > /tmp/greeting")
        _click(driver, '#grid tr[data-host="h2"]')
        bob = wait_for(lambda: next((c for c in _details(driver)["checks"]
                                     if HOSTILE in c["message"]), None),
                       timeout=60, message="bob's message shows the text")
        assert bob["id"] == "greeting" and bob["hint"] == "echo 'hello bob' > /tmp/greeting"
        assert _details(driver)["images"] == 0
        assert driver.execute_script("return window.__pwned;") is None

        # the class report, downloaded from the page after its confirmation
        _click(driver, 'button.report[data-format="csv"]')
        assert "CSV" in _confirm(driver, "ok")
        report = wait_for(lambda: next(iter(downloads.glob("*-class-report.csv")), None),
                          message="the CSV report is downloaded")
        table = {r["learner"]: r for r in csv.DictReader(io.StringIO(report.read_text()))}
        assert table["alice"]["greeting"] == "2" and table["alice"]["percent"] == "100"
        assert table["<b>dan</b>"]["status"] == "unreachable"

        # a reset asked and then cancelled does nothing
        web = classroom.client("h1").containers.get(f"{name}-web")
        _click(driver, '#grid tr[data-host="h1"]')
        _click(driver, "#reset-one")
        assert "Reset the lab of alice (h1)?" in _confirm(driver, "cancel")
        time.sleep(1.0)
        assert dash.learner("h1")["busy"] != "resetting" and "all-pass" in _classes(driver, "h1")
        # a reset from the page: the row is no longer green, the container is new
        _click(driver, "#reset-one")
        assert "their work in it is lost" in _confirm(driver, "ok")
        wait_for(lambda: "resetting" in _rows(driver)["h1"]["text"] or
                 "all-pass" not in _classes(driver, "h1"), timeout=60, message="h1 resetting")
        wait_for(lambda: "all-pass" not in _classes(driver, "h1")
                 and "status-graded" in _classes(driver, "h1")
                 and "busy" not in _classes(driver, "h1"), timeout=90,
                 message="alice's row back to the start")
        assert classroom.client("h1").containers.get(f"{name}-web").id != web.id
        alice = dash.learner("h1")
        assert alice["checks"]["greeting"]["status"] == "fail"
        assert alice["checks"]["web-running"]["status"] == "pass"
        assert "greeting" not in alice["first_passed"]  # she starts again
        assert driver.execute_script("return window.__sameDocument;") == 42

        # re-check everyone now, from the page
        count = dash.state()["round"]["count"]
        _click(driver, "#recheck-all")
        assert "every learner" in _confirm(driver, "ok")
        wait_for(lambda: dash.state()["round"]["count"] > count, timeout=30,
                 message="a round after re-check all")
        _screenshot_class(driver, dash, tmp_path)
    assert "Traceback" not in dash.output, dash.output


def _screenshot_class(driver: Any, dash: Served, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    _click(driver, '#grid tr[data-host="h2"]')
    wait_for(lambda: driver.find_element(By.ID, "learner-title").text == "bob (h2)",
             message="bob selected")
    shot = save_screenshot(driver, tmp_path / "dashboard-learner.png")
    assert shot.stat().st_size > 20_000  # a page, not a blank
