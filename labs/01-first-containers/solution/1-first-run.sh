#!/bin/sh
# Step 1 (first-run): a named container that runs echo and exits 0.
set -eu
. solution/env.sh
docker run $labels --name "$p-first" busybox:1.36 echo hello from a container
