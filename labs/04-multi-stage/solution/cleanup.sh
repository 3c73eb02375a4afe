#!/bin/sh
# Run by `labup test 4` before and after the test: remove the images the lab built.
docker rmi -f "${LABUP_PARAM_IMAGE:-lab4-quotes:2.0}" lab4-quotes:naive >/dev/null 2>&1 || true
