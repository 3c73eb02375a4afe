"""The HTTP side: GET / (a random quote) and GET /health."""

from __future__ import annotations

import json
import os
import random
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from quotes import load_quotes

QUOTES = load_quotes()
PORT = int(os.environ.get("PORT", "8000"))
VERSION = os.environ.get("APP_VERSION", "dev")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            self.send_json(200, {"status": "ok"})
        elif self.path in ("/", "/quote"):
            self.send_json(200, {"quote": random.choice(QUOTES), "version": VERSION})
        else:
            self.send_json(404, {"error": f"no such page: {self.path}"})

    def send_json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        print(f"quotes: {self.address_string()} {format % args}", flush=True)


def main() -> None:
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    print(f"quotes {VERSION}: listening on port {PORT}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
