#!/bin/sh
# Step 2 (web-reaches-api, shop-end-to-end): the frontend joins the frontend network, where the
# API answers to "api"; the shop page then lists the database's items.
set -eu
. solution/env.sh
docker network connect "$p-frontend" "$p-web"
