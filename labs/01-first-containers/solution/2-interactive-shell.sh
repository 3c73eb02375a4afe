#!/bin/sh
# Step 2 (interactive-shell): a shell left with exit 7. No terminal here, so the "interactive"
# session reads its commands from stdin.
set -eu
. solution/env.sh
printf 'hostname\nexit 7\n' | docker run -i $labels --name "$p-shell" busybox:1.36 sh || true
