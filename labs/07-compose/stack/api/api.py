"""api: counts visits in the db service. GET /api/visit, GET /health (checks the db too)."""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DB_URL = os.environ.get("DB_URL", "http://db:5000")
APP_ENV = os.environ.get("APP_ENV", "production")


def db(path: str) -> Any:
    with urllib.request.urlopen(DB_URL + path, timeout=3) as resp:
        return json.loads(resp.read())


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        try:
            if self.path == "/health":
                db("/health")
                return self.reply(200, {"status": "ok", "env": APP_ENV})
            if self.path == "/api/visit":
                visits = db("/incr/visits")["value"]
                return self.reply(200, {"visits": visits, "env": APP_ENV})
        except (urllib.error.URLError, OSError, ValueError) as e:
            return self.reply(503, {"error": f"db unreachable at {DB_URL}: {e}"})
        return self.reply(404, {"error": "not found"})

    def reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        print(f"api: {format % args}", flush=True)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("0.0.0.0", 8000), Handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    print(f"api: listening on port 8000 ({APP_ENV}), db at {DB_URL}", flush=True)
    server.serve_forever()
