#!/bin/sh
# The worker: prints a secret code word once, then a heartbeat every 2 seconds.
code=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
mkdir -p /var/lib/worker && echo "$code" > /var/lib/worker/.code && chmod 600 /var/lib/worker/.code
echo "worker: started; today's code word is: $code"
trap 'echo "worker: stopping"; exit 0' TERM INT
n=0
while :; do
    n=$((n + 1))
    echo "worker: heartbeat $n"
    sleep 2 & wait $!
done
