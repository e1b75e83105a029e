#!/bin/bash
# Measures the probe's epoll and io_uring loops side by side: each one
# process pinned to CPU 0, wrk pinned to CPU 1, interleaved rounds.
#   bench/uring_probe/run.sh [ROUNDS] [SECONDS] [CONNS]
set -euo pipefail
cd "$(dirname "$0")"
ROUNDS=${1:-3}; SECS=${2:-5}; CONNS=${3:-50}
cargo build -q --release
BIN=target/release/uring_probe
PORT=18990  # the next run takes the next port: a ring closes its listener asynchronously
for round in $(seq "$ROUNDS"); do
    for mode in ${MODES:-epoll uring:plain uring:coop uring:defer}; do
        PORT=$((PORT + 1))
        QIAO_PROBE_FLAGS=${mode#*:} taskset -c 0 "$BIN" "${mode%%:*}" $PORT &
        pid=$!
        sleep 0.3
        taskset -c 1 wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$PORT/" >/dev/null
        rps=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$PORT/" |
            awk '/Requests\/sec/ {print $2}')
        kill $pid; wait $pid 2>/dev/null || true
        printf "round %s  %-12s %10s req/s\n" "$round" "$mode" "$rps"
    done
done
