#!/bin/sh
# Step 1 (note-survived): this learner's note, written through the service into the volume (from
# inside the container: the host may lack wget and curl), then the container is replaced.
set -eu
. solution/env.sh
note=${LABUP_PARAM_NOTE:?run by labup solve or labup test, which set it}
labup=${LABUP_CLI:-labup}
set_instance=""
[ "$inst" = default ] || set_instance="--instance $inst"
q=$(printf %s "$note" | sed 's/ /+/g')
docker exec "$p-notes" python -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/add?text=$q').read().decode())"
docker rm -f "$p-notes"
$labup up "$LABUP_LAB_PATH" $set_instance --no-check --quiet
