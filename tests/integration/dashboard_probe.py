"""What plain HTTP and a real browser see of a dashboard that asks for its token.

Run by tests/integration/test_dashboard_token.py *inside* the network namespace where the
dashboard listens (``nsenter --net=... python dashboard_probe.py URL TOKEN``): the address
exists only there. Prints one JSON document of what it saw; the test asserts on it.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from browser import chromium, wait_for
from served import fetch


def http(url: str, token: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    bearer = {"Authorization": f"Bearer {token}"}
    post = {"Content-Type": "application/json"}
    seen["page_without_token"] = fetch(url)[0]
    seen["state_without_token"] = fetch(url + "api/state")[0]
    seen["events_without_token"] = fetch(url + "events")[0]
    seen["report_without_token"] = fetch(url + "report.csv")[0]
    seen["page_wrong_token"] = fetch(url + "?token=not-the-token")[0]
    seen["state_wrong_bearer"] = fetch(url + "api/state",
                                       headers={"Authorization": "Bearer nope"})[0]
    status, headers, _ = fetch(url + "?token=" + token)
    seen["page_with_token"] = [status, headers.get("location"), headers.get("set-cookie", "")]
    cookie = headers.get("set-cookie", "").split(";")[0]
    status, _, body = fetch(url, headers={"Cookie": cookie})
    seen["page_with_cookie"] = status
    match = re.search(r'name="csrf-token" content="([^"]+)"', body.decode())
    csrf = match.group(1) if match else ""
    seen["state_with_bearer"] = fetch(url + "api/state", headers=bearer)[0]
    seen["post_without_csrf"] = fetch(url + "api/recheck", method="POST",
                                      headers={**bearer, **post}, body=b"{}")[0]
    seen["post_csrf_without_token"] = fetch(url + "api/recheck", method="POST",
                                            headers={"X-CSRF-Token": csrf, **post},
                                            body=b"{}")[0]
    seen["post_other_origin"] = fetch(url + "api/recheck", method="POST",
                                      headers={**bearer, "X-CSRF-Token": csrf, **post,
                                               "Origin": "http://evil.example"}, body=b"{}")[0]
    seen["post_with_both"] = fetch(url + "api/recheck", method="POST",
                                   headers={**bearer, "X-CSRF-Token": csrf, **post},
                                   body=b"{}")[0]
    port = url.rstrip("/").rsplit(":", 1)[1]
    seen["other_host_name"] = fetch(url + "api/state",
                                    headers={**bearer, "Host": f"evil.example:{port}"})[0]
    return seen


def browser(url: str, token: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    with chromium() as driver:
        driver.get(url)
        seen["without_token"] = driver.execute_script("return document.body.innerText;")
        driver.get(url + "?token=" + token)
        wait_for(lambda: driver.execute_script(
            "return document.querySelectorAll('#grid tbody tr').length;") == 1,
            message="the grid with the token")
        wait_for(lambda: driver.execute_script(
            "return document.getElementById('conn').textContent;") == "live",
            message="the event stream is live")
        seen["address_after"] = driver.current_url
        seen["token_in_page"] = token in driver.page_source
        seen["cookie_readable_by_script"] = token in driver.execute_script(
            "return document.cookie;")
        # the event stream and the API from the page: with the cookie, then without it
        probe = ("return fetch(arguments[0]).then(r => r.status);")
        seen["page_state_with_cookie"] = driver.execute_script(
            "return fetch('/api/state').then(r => r.status);")
        driver.delete_all_cookies()
        seen["page_events_without_cookie"] = driver.execute_script(probe, "/events")
        seen["page_state_without_cookie"] = driver.execute_script(probe, "/api/state")
    return seen


def main() -> None:
    url, token = sys.argv[1], sys.argv[2]
    print(json.dumps({"http": http(url, token), "browser": browser(url, token)}))


if __name__ == "__main__":
    main()
