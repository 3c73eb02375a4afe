#!/bin/sh
# Reference solution of lab 3, run by `labup test 3` with the lab folder as working directory.
set -eu
lab=${LABUP_LAB:-lab3}
inst=${LABUP_INSTANCE:-default}
if [ "$inst" = default ]; then p=$lab; else p=$lab-$inst; fi
port=${LABUP_PARAM_APP_PORT:-8030}
tag=${LABUP_PARAM_IMAGE:-lab3-quotes:1.0}
labels="--label labup.managed=true --label labup.lab=$lab --label labup.instance=$inst"

cp solution/Dockerfile app/Dockerfile
cp solution/.dockerignore app/.dockerignore
docker build -t "$tag" app
docker run -d $labels --name "$p-quotes" -p "127.0.0.1:$port:8000" "$tag"
