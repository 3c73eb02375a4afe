#!/bin/sh
# Step 2 (dev-live-edit): edit on the host, the container sees it at once (a bind mount).
set -eu
marker=${LABUP_PARAM_MARKER:?run by labup solve or labup test, which set it}
sed -i "s|<h1>Work in progress</h1>|<h1>Work in progress: $marker</h1>|" site/index.html
