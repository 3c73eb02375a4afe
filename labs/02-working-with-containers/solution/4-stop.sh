#!/bin/sh
# Step 4 (old-stopped): a graceful stop (SIGTERM, then it exits 0 by itself).
set -eu
. solution/env.sh
docker stop "$p-old"
