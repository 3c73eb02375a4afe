#!/bin/sh
# Serve one page that shows $GREETING, on $PORT (8080 by default).
# Stops at once on `docker stop` (SIGTERM), like every well-behaved container.
set -eu
port="${PORT:-8080}"
mkdir -p /tmp/www
cat >/tmp/www/index.html <<PAGE
<!doctype html>
<title>greeter</title>
<h1>${GREETING:-Hello from a container}</h1>
<p>Served by container $(hostname) on port ${port}.</p>
PAGE
echo "greeter: GREETING=${GREETING:-<not set>}"
echo "greeter: serving http on port ${port}"
httpd -f -p "${port}" -h /tmp/www &
pid=$!
trap 'echo "greeter: stopping"; kill "$pid" 2>/dev/null; exit 0' TERM INT
wait "$pid"
