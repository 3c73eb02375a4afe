"""Write the large test corpus the tests read (about 60 MB in tests/fixtures/).

Build-time only: it is needed to run the tests, never to run the app.
"""

import os
from pathlib import Path

FIXTURES = Path(__file__).with_name("fixtures")
FIXTURES.mkdir(exist_ok=True)
for n in range(6):
    (FIXTURES / f"corpus-{n}.bin").write_bytes(os.urandom(10 * 1024 * 1024))
print(f"wrote {sum(p.stat().st_size for p in FIXTURES.iterdir()) // 2**20} MiB of fixtures")
