#!/bin/sh
# Reference solution of lab 1, run by `labup test 1` with the lab folder as working directory.
set -eu
lab=${LABUP_LAB:-lab1}
inst=${LABUP_INSTANCE:-default}
if [ "$inst" = default ]; then p=$lab; else p=$lab-$inst; fi
web_port=${LABUP_PARAM_WEB_PORT:-8011}
greeting=${LABUP_PARAM_GREETING:-Ahoy from my first container}
# These labels let `labup down` remove what this script creates; a learner leaves them out.
labels="--label labup.managed=true --label labup.lab=$lab --label labup.instance=$inst"

docker run $labels --name "$p-first" busybox:1.36 echo hello from a container
# No terminal here, so the "interactive" session reads its commands from stdin.
printf 'hostname\nexit 7\n' | docker run -i $labels --name "$p-shell" busybox:1.36 sh || true
docker run -d $labels --name "$p-web" -p "127.0.0.1:$web_port:8080" \
    -e GREETING="$greeting" labup/lab1-greeter
