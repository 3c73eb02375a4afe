#!/bin/sh
# Run by `labup test 3` before and after the test: remove the image the solution built.
docker rmi -f "${LABUP_PARAM_IMAGE:-lab3-quotes:1.0}" >/dev/null 2>&1 || true
