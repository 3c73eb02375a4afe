#!/bin/sh
# Start the web app with the settings of /etc/webapp/webapp.conf; stop at once on SIGTERM.
set -eu
conf=/etc/webapp/webapp.conf
echo "webapp: reading settings from $conf"
. "$conf"
echo "webapp: document root $DOC_ROOT"
echo "webapp: listening on port $LISTEN_PORT"
httpd -f -p "$LISTEN_PORT" -h "$DOC_ROOT" &
pid=$!
trap 'echo "webapp: stopping"; kill "$pid" 2>/dev/null; exit 0' TERM INT
wait "$pid"
