#!/bin/sh
# Step 3 (web-running, web-env, web-published): the greeter in the background, this learner's
# greeting in its environment, its port 8080 published on this learner's port.
set -eu
. solution/env.sh
docker run -d $labels --name "$p-web" -p "127.0.0.1:$web_port:8080" \
    -e GREETING="$greeting" labup/lab1-greeter
