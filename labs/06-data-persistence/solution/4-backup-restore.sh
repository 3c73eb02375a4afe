#!/bin/sh
# Step 4 (backup-tar, restored): back the volume up into the lab folder, then restore it into
# another volume.
set -eu
. solution/env.sh
docker run --rm -v "$p-data:/data:ro" -v "$PWD/backup:/backup" busybox:1.36 \
    tar -cf /backup/notes-backup.tar -C /data .
docker run --rm -v "$p-restore:/data" -v "$PWD/backup:/backup:ro" busybox:1.36 \
    tar -xf /backup/notes-backup.tar -C /data
