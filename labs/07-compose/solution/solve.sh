#!/bin/sh
# Reference solution of lab 7, run by `labup test 7` with the lab folder as working directory.
set -eu
export WEB_PORT=${LABUP_PARAM_WEB_PORT:-8070}
export API_DEBUG_PORT=${LABUP_PARAM_API_DEBUG_PORT:-8071}
cp solution/docker-compose.yml solution/docker-compose.override.yml stack/
cd stack
# the depends_on conditions order the start in both versions
if docker compose version >/dev/null 2>&1; then
    docker compose -p lab7 up -d --build          # v2 builds the images in parallel
else
    docker-compose -p lab7 build --parallel       # v1 needs asking
    docker-compose -p lab7 up -d
fi
