"""Train a small classifier and save it to $MODEL_DIR/model.json.

Pure Python (no numpy) so the image stays small and builds offline: logistic regression by
gradient descent on a synthetic, seeded data set of two features. A real project would use
scikit-learn or PyTorch here; the container pattern is the same.
Environment: EPOCHS (default 200), LEARNING_RATE (0.1), MODEL_DIR (/models), SEED (42).
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import sys
import time
from pathlib import Path


def device() -> str:
    """'gpu' when a GPU is visible in this container, else 'cpu'."""
    if shutil.which("nvidia-smi") or Path("/dev/nvidia0").exists():
        return "gpu"
    return "cpu"


def dataset(n: int, seed: int) -> list[tuple[float, float, int]]:
    """Two Gaussian blobs: class 1 around (2, 2), class 0 around (-2, -2)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        centre = 2.0 if label else -2.0
        rows.append((rng.gauss(centre, 1.2), rng.gauss(centre, 1.2), label))
    return rows


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


def train(
    rows: list[tuple[float, float, int]], epochs: int, lr: float
) -> tuple[list[float], float]:
    w, b = [0.0, 0.0], 0.0
    for epoch in range(1, epochs + 1):
        gw, gb = [0.0, 0.0], 0.0
        for x1, x2, y in rows:
            err = sigmoid(w[0] * x1 + w[1] * x2 + b) - y
            gw[0] += err * x1
            gw[1] += err * x2
            gb += err
        n = len(rows)
        w = [w[0] - lr * gw[0] / n, w[1] - lr * gw[1] / n]
        b -= lr * gb / n
        if epoch % max(1, epochs // 5) == 0:
            print(f"train: epoch {epoch}/{epochs}", flush=True)
    return w, b


def main() -> None:
    epochs = int(os.environ.get("EPOCHS", "200"))
    lr = float(os.environ.get("LEARNING_RATE", "0.1"))
    seed = int(os.environ.get("SEED", "42"))
    out = Path(os.environ.get("MODEL_DIR", "/models"))
    where = device()
    if where == "cpu":
        print("train: no GPU visible in this container: training on the CPU", flush=True)
    rows = dataset(2000, seed)
    split = int(len(rows) * 0.8)
    started = time.time()
    w, b = train(rows[:split], epochs, lr)
    test = rows[split:]
    correct = sum(1 for x1, x2, y in test if (sigmoid(w[0] * x1 + w[1] * x2 + b) >= 0.5) == bool(y))
    model = {
        "kind": "logistic-regression",
        "weights": w,
        "bias": b,
        "epochs": epochs,
        "accuracy": round(correct / len(test), 4),
        "device": where,
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.time() - started, 2),
    }
    try:
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / "model.json.tmp"
        tmp.write_text(json.dumps(model, indent=2))
        tmp.replace(out / "model.json")
    except OSError as e:
        sys.exit(f"train: cannot write the model to {out}: {e} (is a volume mounted there?)")
    print(f"train: accuracy {model['accuracy']} after {epochs} epochs on {where}", flush=True)
    print(f"train: model saved to {out / 'model.json'}", flush=True)


if __name__ == "__main__":
    main()
