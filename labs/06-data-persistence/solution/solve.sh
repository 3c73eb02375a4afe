#!/bin/sh
# Reference solution of lab 6, run by `labup test 6` with the lab folder as working directory.
set -eu
lab=${LABUP_LAB:-lab6}
inst=${LABUP_INSTANCE:-default}
if [ "$inst" = default ]; then p=$lab; else p=$lab-$inst; fi
note=${LABUP_PARAM_NOTE:-volumes outlive containers}
marker=${LABUP_PARAM_MARKER:-edited live on the host}
labup=${LABUP_CLI:-labup}
labels="--label labup.managed=true --label labup.lab=$lab --label labup.instance=$inst"
set_instance=""
[ "$inst" = default ] || set_instance="--instance $inst"

# 1. a note, written through the service into the volume (a probe: the host may lack wget/curl)
q=$(printf %s "$note" | sed 's/ /+/g')
docker exec "$p-notes" python -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/add?text=$q').read().decode())"
# ... then the container is replaced; the volume keeps the data
docker rm -f "$p-notes"
$labup up "$LABUP_LAB_PATH" $set_instance --no-check --quiet

# 2. the bind mount: edit on the host, the container sees it at once
sed -i "s|<h1>Work in progress</h1>|<h1>Work in progress: $marker</h1>|" site/index.html

# 3. a container of our own with a tmpfs
docker run -d $labels --name "$p-cache" --tmpfs /cache:size=32m busybox:1.36 \
    sh -c "trap 'exit 0' TERM INT; sleep 3600 & wait"

# 4. back up the volume into the lab folder, then restore it into another volume
docker run --rm -v "$p-data:/data:ro" -v "$PWD/backup:/backup" busybox:1.36 \
    tar -cf /backup/notes-backup.tar -C /data .
docker run --rm -v "$p-restore:/data" -v "$PWD/backup:/backup:ro" busybox:1.36 \
    tar -xf /backup/notes-backup.tar -C /data
