"""kv: a tiny key-value database over HTTP, kept in /data/kv.json (mount a volume there).

GET /get/KEY, GET /incr/KEY (adds one, returns the new value), GET /health
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DATA = Path(os.environ.get("KV_FILE", "/data/kv.json"))
LOCK = threading.Lock()


def load() -> dict[str, int]:
    try:
        return dict(json.loads(DATA.read_text()))
    except FileNotFoundError:
        return {}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")
        if parts == ["health"]:
            return self.reply(200, {"status": "ok", "file": str(DATA)})
        if len(parts) == 2 and parts[0] == "get":
            return self.reply(200, {"key": parts[1], "value": load().get(parts[1], 0)})
        if len(parts) == 2 and parts[0] == "incr":
            with LOCK:
                data = load()
                data[parts[1]] = data.get(parts[1], 0) + 1
                DATA.parent.mkdir(parents=True, exist_ok=True)
                DATA.write_text(json.dumps(data))
            return self.reply(200, {"key": parts[1], "value": data[parts[1]]})
        return self.reply(404, {"error": "not found"})

    def reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        print(f"db: {format % args}", flush=True)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("0.0.0.0", 5000), Handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    print(f"db: listening on port 5000, data in {DATA}", flush=True)
    server.serve_forever()
