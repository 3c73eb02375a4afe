#!/bin/sh
# Step 5 (app-fixed): the app listens on 8000 but 8080 is published: fix its config, restart it.
set -eu
. solution/env.sh
tmp=$(mktemp -d)
docker cp "$p-app:/etc/webapp/webapp.conf" "$tmp/webapp.conf"
sed -i 's/^LISTEN_PORT=.*/LISTEN_PORT=8080/' "$tmp/webapp.conf"
docker cp "$tmp/webapp.conf" "$p-app:/etc/webapp/webapp.conf"
rm -rf "$tmp"
docker restart "$p-app"
