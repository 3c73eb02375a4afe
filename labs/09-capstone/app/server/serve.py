"""Serve the model that the training container saved in $MODEL_DIR/model.json.

GET /health   always 200 (the server is up), says whether a model is loaded
GET /info     the device (cpu or gpu) and the model's metadata
POST /predict {"features": [x1, x2]} -> {"prediction": 0|1, "probability": p}
The model file is re-read when it changes, so a new training run needs no restart.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MODEL = Path(os.environ.get("MODEL_DIR", "/models")) / "model.json"
DEVICE = "gpu" if shutil.which("nvidia-smi") or Path("/dev/nvidia0").exists() else "cpu"
_cache: dict[str, Any] = {"mtime": None, "model": None}
_lock = threading.Lock()


def model() -> dict[str, Any] | None:
    """The current model, reloaded when the file changed; None before the first training."""
    try:
        mtime = MODEL.stat().st_mtime
    except FileNotFoundError:
        return None
    with _lock:
        if _cache["mtime"] != mtime:
            _cache["model"] = json.loads(MODEL.read_text())
            _cache["mtime"] = mtime
            print(f"serve: loaded model trained at {_cache['model'].get('trained_at')}", flush=True)
        return dict(_cache["model"])


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        m = model()
        if self.path == "/health":
            return self.reply(200, {"status": "ok", "model_loaded": m is not None})
        if self.path == "/info":
            return self.reply(200, {"device": DEVICE, "model": m})
        return self.reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self.path != "/predict":
            return self.reply(404, {"error": "not found"})
        m = model()
        if m is None:
            return self.reply(503, {"error": f"no model yet in {MODEL}: run the training first"})
        try:
            length = int(self.headers.get("Content-Length") or 0)
            features = json.loads(self.rfile.read(length) or b"{}")["features"]
            x1, x2 = float(features[0]), float(features[1])
        except (ValueError, KeyError, IndexError, TypeError):
            return self.reply(400, {"error": 'send {"features": [x1, x2]}'})
        z = m["weights"][0] * x1 + m["weights"][1] * x2 + m["bias"]
        p = 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))
        self.reply(200, {"prediction": int(p >= 0.5), "probability": round(p, 4), "device": DEVICE})

    def reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        print(f"serve: {format % args}", flush=True)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("0.0.0.0", 8000), Handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    if DEVICE == "cpu":
        print("serve: no GPU visible in this container: serving on the CPU", flush=True)
    print(f"serve: listening on port 8000, model file {MODEL}", flush=True)
    server.serve_forever()
