#!/bin/sh
# Reference solution of lab 2, run by `labup test 2` with the lab folder as working directory.
set -eu
lab=${LABUP_LAB:-lab2}
inst=${LABUP_INSTANCE:-default}
if [ "$inst" = default ]; then p=$lab; else p=$lab-$inst; fi
mem=${LABUP_PARAM_MEMORY_LIMIT_MB:-64}

# 1. the code word, from the logs, written inside the container with exec
code=$(docker logs "$p-worker" 2>&1 | sed -n 's/.*code word is: //p' | head -n 1)
docker exec "$p-worker" sh -c "echo $code > /tmp/answer.txt"

# 2. a memory limit on a running container (swap limit too, or the engine refuses)
docker update --memory "${mem}m" --memory-swap "${mem}m" "$p-worker"

# 3. pause one, stop the other gracefully
docker pause "$p-sleeper"
docker stop "$p-old"

# 4. the broken app listens on 8000 but 8080 is published: fix its config and restart it
tmp=$(mktemp -d)
docker cp "$p-app:/etc/webapp/webapp.conf" "$tmp/webapp.conf"
sed -i 's/^LISTEN_PORT=.*/LISTEN_PORT=8080/' "$tmp/webapp.conf"
docker cp "$tmp/webapp.conf" "$p-app:/etc/webapp/webapp.conf"
rm -rf "$tmp"
docker restart "$p-app"
