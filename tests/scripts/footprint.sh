#!/usr/bin/env bash
# Release binary sizes and idle memory of a server and a client, for each runtime.
# Usage: tests/scripts/footprint.sh   (from anywhere; builds the release binaries first)
# Prints a Markdown table: binary size, and RSS of an idle server and an idle client
# (one client joined, sharing one small file), read from /proc/PID/status after 1 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p napshare-mio -p napshare-smol
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

wait_for_line() { # file pattern
    for _ in $(seq 100); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "timed out waiting for '$2' in $1" >&2
    return 1
}

echo "| runtime | binary | size (KiB) | idle server RSS (KiB) | idle client RSS (KiB) |"
echo "| --- | --- | ---: | ---: | ---: |"
for bin in napshare napshare-smol; do
    exe=target/release/$bin
    size=$(( $(stat -c %s "$exe") / 1024 ))
    "$exe" server --listen 127.0.0.1:0 >"$work/$bin.server" 2>&1 &
    spid=$!; pids+=("$spid")
    wait_for_line "$work/$bin.server" "listening on"
    addr=$(grep -o '[0-9.]*:[0-9]*$' "$work/$bin.server")
    mkdir -p "$work/$bin/public"
    echo hello >"$work/$bin/public/hello.txt"
    # The client reads commands from a FIFO kept open, so it stays idle until killed.
    mkfifo "$work/$bin.in"
    "$exe" client --server "$addr" --peer-listen 127.0.0.1:0 \
        --shared "$work/$bin/public" --downloads "$work/$bin/downloads" \
        <"$work/$bin.in" >"$work/$bin.client" 2>&1 &
    cpid=$!; pids+=("$cpid")
    exec {hold}>"$work/$bin.in"
    wait_for_line "$work/$bin.client" "sharing hello.txt"
    sleep 1
    runtime=${bin#napshare}; runtime=${runtime#-}
    echo "| ${runtime:-mio} | $bin | $size | $(rss_kib "$spid") | $(rss_kib "$cpid") |"
    exec {hold}>&-
    kill "$spid" "$cpid" 2>/dev/null || true
done
