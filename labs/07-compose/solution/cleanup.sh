#!/bin/sh
# Run by `labup test 7` before and after the test: remove the compose project lab7 entirely.
cd "$(dirname "$0")/../stack" || exit 0
if [ -f docker-compose.yml ]; then
    sh ../solution/compose.sh -p lab7 down --volumes --rmi local --remove-orphans >/dev/null 2>&1
fi
# whatever is left with the project's label (no compose file at hand, an older run)
for kind in container network volume; do
    case $kind in
        container) ids=$(docker ps -aq --filter label=com.docker.compose.project=lab7) ;;
        network) ids=$(docker network ls -q --filter label=com.docker.compose.project=lab7) ;;
        volume) ids=$(docker volume ls -q --filter label=com.docker.compose.project=lab7) ;;
    esac
    [ -n "$ids" ] || continue
    case $kind in
        container) docker rm -f $ids ;;
        *) docker $kind rm $ids ;;
    esac >/dev/null 2>&1
done
exit 0
