#!/bin/sh
# Run by `labup test 9` before and after the test: remove the compose project lab9 and its images.
cd "$(dirname "$0")/../app" || exit 0
if [ -f docker-compose.yml ]; then
    sh ../solution/compose.sh -p lab9 down --volumes --remove-orphans >/dev/null 2>&1
fi
ids=$(docker ps -aq --filter label=com.docker.compose.project=lab9)
[ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1
ids=$(docker network ls -q --filter label=com.docker.compose.project=lab9)
[ -z "$ids" ] || docker network rm $ids >/dev/null 2>&1
ids=$(docker volume ls -q --filter label=com.docker.compose.project=lab9)
[ -z "$ids" ] || docker volume rm $ids >/dev/null 2>&1
docker rmi lab9/trainer:1.0 lab9/server:1.0 lab9/web:1.0 >/dev/null 2>&1
exit 0
