#!/bin/sh
# Reference solution of lab 8, run by `labup test 8` with the lab folder as working directory.
set -eu
lab=${LABUP_LAB:-lab8}
inst=${LABUP_INSTANCE:-default}
if [ "$inst" = default ]; then p=$lab; else p=$lab-$inst; fi
epochs=${LABUP_PARAM_EPOCHS:-300}
labels="--label labup.managed=true --label labup.lab=$lab --label labup.instance=$inst"

# Ask for a GPU only where the engine has one; the training runs on the CPU otherwise.
gpu=""
if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q nvidia; then gpu="--gpus all"; fi
docker run $labels $gpu --name "$p-train" --cpus 1 --memory 256m \
    -v "$p-models:/models" -e EPOCHS="$epochs" labup/lab8-train
