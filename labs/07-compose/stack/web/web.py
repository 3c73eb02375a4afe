"""web: the page visitors see; asks the api for the visit count. GET /, GET /health."""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_URL = os.environ.get("API_URL", "http://api:8000")
APP_ENV = os.environ.get("APP_ENV", "production")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            return self.reply(200, "text/plain", "ok")
        if self.path != "/":
            return self.reply(404, "text/plain", "not found")
        try:
            with urllib.request.urlopen(API_URL + "/api/visit", timeout=3) as resp:
                visits = json.loads(resp.read())["visits"]
            text = f"<p>{visits} visits so far.</p>"
        except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
            text = f"<p>The API at {API_URL} did not answer: {e}</p>"
        page = f"<!doctype html><title>visits</title><h1>Visit counter</h1>{text}"
        self.reply(200, "text/html", page + f"<footer>environment: {APP_ENV}</footer>")

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
    print(f"web: listening on port 8080 ({APP_ENV}), api at {API_URL}", flush=True)
    server.serve_forever()
