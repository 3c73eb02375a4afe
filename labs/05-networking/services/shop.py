"""Three small services of a shop, one per container: ``python shop.py db|api|web``.

db   keeps the catalogue, answers GET /items on port 5000
api  GET /api/items: asks the db at $DB_URL; GET /health
web  GET /: an HTML page built from the api at $API_URL, on port 8080
Standard library only; each stops at once on SIGTERM.
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

ITEMS = [
    {"sku": "kb-01", "name": "mechanical keyboard", "price": 89},
    {"sku": "ms-07", "name": "blue whale mouse pad", "price": 12},
    {"sku": "hd-42", "name": "container shipping headphones", "price": 59},
]
PORTS = {"db": 5000, "api": 8000, "web": 8080}


def fetch(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=3) as resp:
        return json.loads(resp.read())


class Handler(BaseHTTPRequestHandler):
    role = "db"

    def do_GET(self) -> None:
        try:
            status, body, ctype = self.route()
        except (urllib.error.URLError, OSError, ValueError) as e:
            status, body, ctype = 502, json.dumps({"error": f"upstream: {e}"}), "application/json"
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def route(self) -> tuple[int, str, str]:
        if self.path == "/health":
            return 200, json.dumps({"status": "ok", "role": self.role}), "application/json"
        if self.role == "db" and self.path == "/items":
            return 200, json.dumps(ITEMS), "application/json"
        if self.role == "api" and self.path == "/api/items":
            items = fetch(os.environ.get("DB_URL", "http://database:5000") + "/items")
            return 200, json.dumps({"items": items, "source": "db"}), "application/json"
        if self.role == "web" and self.path == "/":
            api = os.environ.get("API_URL", "http://api:8000")
            try:
                items = fetch(api + "/api/items")["items"]
                rows = "".join(f"<li>{i['name']}: {i['price']} EUR</li>" for i in items)
                page = f"<h1>Shop</h1><ul>{rows}</ul>"
            except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
                page = f"<h1>Shop</h1><p>API unreachable at {api}: {e}</p>"
            return 200, f"<!doctype html><title>shop</title>{page}", "text/html"
        return 404, json.dumps({"error": "not found"}), "application/json"

    def log_message(self, format: str, *args: Any) -> None:
        print(f"{self.role}: {format % args}", flush=True)


def main() -> None:
    role = sys.argv[1] if len(sys.argv) > 1 else "db"
    if role not in PORTS:
        sys.exit(f"usage: shop.py {'|'.join(PORTS)}")
    Handler.role = role
    server = ThreadingHTTPServer(("0.0.0.0", PORTS[role]), Handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    print(f"{role}: listening on port {PORTS[role]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
