"""web: the page users see. It asks the model server for predictions of a few sample points.

GET /         an HTML page with the model's device, accuracy and predictions
GET /health   200 when the page can be served
Environment: SERVER_URL (default http://server:8000).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SERVER_URL = os.environ.get("SERVER_URL", "http://server:8000")
SAMPLES = [(2.5, 1.5), (-3.0, -1.0), (0.5, 0.2)]


def call(path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(SERVER_URL + path, data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=3) as resp:
        return json.loads(resp.read())


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            return self.reply(200, "text/plain", "ok")
        if self.path != "/":
            return self.reply(404, "text/plain", "not found")
        try:
            info = call("/info")
            rows = []
            for x1, x2 in SAMPLES:
                p = call("/predict", {"features": [x1, x2]})
                rows.append(f"<tr><td>{x1}, {x2}</td><td>prediction {p['prediction']}</td>"
                            f"<td>{p['probability']}</td></tr>")
            model = info.get("model") or {}
            body = (f"<p>Model: {model.get('kind')} trained {model.get('epochs')} epochs, "
                    f"accuracy {model.get('accuracy')}, served on {info.get('device')}.</p>"
                    f"<table>{''.join(rows)}</table>")
        except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
            body = f"<p>The model server at {SERVER_URL} did not answer: {e}</p>"
        page = f"<!doctype html><title>predictions</title><h1>Predictions</h1>{body}"
        self.reply(200, "text/html", page)

    def reply(self, status: int, ctype: str, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        print(f"web: {format % args}", flush=True)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("0.0.0.0", 8080), Handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    print(f"web: listening on port 8080, model server at {SERVER_URL}", flush=True)
    server.serve_forever()
