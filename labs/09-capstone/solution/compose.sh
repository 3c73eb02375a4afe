#!/bin/sh
# Run Docker Compose v2 (`docker compose`) where it exists, else v1 (`docker-compose`).
if docker compose version >/dev/null 2>&1; then
    exec docker compose "$@"
elif command -v docker-compose >/dev/null 2>&1; then
    exec docker-compose "$@"
fi
echo "neither 'docker compose' nor 'docker-compose' is installed" >&2
exit 127
