#!/bin/sh
# Step 3 (own-tmpfs): a container of our own with a 32 MiB tmpfs.
set -eu
. solution/env.sh
docker run -d $labels --name "$p-cache" --tmpfs /cache:size=32m busybox:1.36 \
    sh -c "trap 'exit 0' TERM INT; sleep 3600 & wait"
