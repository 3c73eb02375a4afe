"""Notes: a tiny note-taking service that keeps its data in /data/notes.json.

GET /notes            every note, with the container that wrote it
GET /add?text=...     add a note
GET /survivors        notes written by an EARLIER container: they survived a replacement
GET /health
Standard library only; stops at once on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

DATA = Path(os.environ.get("NOTES_FILE", "/data/notes.json"))
ME = socket.gethostname()  # the container id: changes when the container is replaced
LOCK = threading.Lock()


def load() -> list[dict[str, Any]]:
    try:
        return list(json.loads(DATA.read_text()))
    except FileNotFoundError:
        return []


def save(notes: list[dict[str, Any]]) -> None:
    DATA.parent.mkdir(parents=True, exist_ok=True)
    tmp = DATA.with_suffix(".tmp")
    tmp.write_text(json.dumps(notes, indent=2))
    tmp.replace(DATA)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/health":
            body: Any = {"status": "ok", "container": ME}
        elif url.path == "/notes":
            body = {"served_by": ME, "notes": load()}
        elif url.path == "/survivors":
            body = {"served_by": ME, "notes": [n for n in load() if n["written_by"] != ME]}
        elif url.path == "/add":
            text = (parse_qs(url.query).get("text") or [""])[0].strip()
            if not text:
                return self.reply(400, {"error": "give ?text=..."})
            with LOCK:
                notes = load()
                notes.append({"text": text, "written_by": ME, "at": time.time()})
                save(notes)
            body = {"added": text, "count": len(notes)}
        else:
            return self.reply(404, {"error": "not found"})
        self.reply(200, body)

    def reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        print(f"notes: {format % args}", flush=True)


def main() -> None:
    server = ThreadingHTTPServer(("0.0.0.0", 8000), Handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    print(f"notes: container {ME}, data in {DATA}, {len(load())} notes", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
