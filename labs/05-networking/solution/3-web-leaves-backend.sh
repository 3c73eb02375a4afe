#!/bin/sh
# Step 3 (web-cannot-reach-db, web-cannot-resolve-database): the frontend leaves the backend
# network, so it can no longer reach the database, by name or by alias.
set -eu
. solution/env.sh
docker network disconnect "$p-backend" "$p-web"
