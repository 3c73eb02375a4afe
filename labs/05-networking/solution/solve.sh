#!/bin/sh
# Reference solution of lab 5, run by `labup test 5` with the lab folder as working directory.
set -eu
lab=${LABUP_LAB:-lab5}
inst=${LABUP_INSTANCE:-default}
if [ "$inst" = default ]; then p=$lab; else p=$lab-$inst; fi

# the database answers to "database" on the backend network
docker network disconnect "$p-backend" "$p-db"
docker network connect --alias database "$p-backend" "$p-db"
# the API joins the backend network (it keeps its alias "api" on the frontend)
docker network connect "$p-backend" "$p-api"
# the frontend moves from the backend to the frontend network
docker network connect "$p-frontend" "$p-web"
docker network disconnect "$p-backend" "$p-web"
