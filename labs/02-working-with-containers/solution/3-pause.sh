#!/bin/sh
# Step 3 (sleeper-paused): frozen, not stopped.
set -eu
. solution/env.sh
docker pause "$p-sleeper"
