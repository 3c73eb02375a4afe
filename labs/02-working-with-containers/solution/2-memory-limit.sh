#!/bin/sh
# Step 2 (worker-memory-limit): this learner's memory limit on the running worker (the swap
# limit too, or the engine refuses).
set -eu
. solution/env.sh
mem=${LABUP_PARAM_MEMORY_LIMIT_MB:?run by labup solve or labup test, which set it}
docker update --memory "${mem}m" --memory-swap "${mem}m" "$p-worker"
