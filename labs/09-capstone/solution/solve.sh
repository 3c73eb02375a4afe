#!/bin/sh
# Reference solution of the capstone, run by `labup test 9` with the lab folder as working directory.
set -eu
export WEB_PORT=${LABUP_PARAM_WEB_PORT:-8090}
for s in trainer server web; do
    cp "solution/$s/Dockerfile" "solution/$s/.dockerignore" "app/$s/"
done
cp solution/docker-compose.yml app/
cd app
if docker compose version >/dev/null 2>&1; then
    docker compose -p lab9 up -d --build          # v2 builds the three images in parallel
else
    docker-compose -p lab9 build --parallel       # v1 needs asking
    docker-compose -p lab9 up -d
fi
