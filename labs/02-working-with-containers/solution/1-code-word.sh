#!/bin/sh
# Step 1 (code-word): the code word from the worker's logs, written inside it with exec.
set -eu
. solution/env.sh
code=$(docker logs "$p-worker" 2>&1 | sed -n 's/.*code word is: //p' | head -n 1)
docker exec "$p-worker" sh -c "echo $code > /tmp/answer.txt"
