#!/bin/sh
# Step 1 (api-reaches-db): the database answers to its alias on the backend network, and the
# API joins that network (it keeps its alias "api" on the frontend).
set -eu
. solution/env.sh
docker network disconnect "$p-backend" "$p-db"
docker network connect --alias "$alias" "$p-backend" "$p-db"
docker network connect "$p-backend" "$p-api"
