#!/usr/bin/env bash
# The index server under load, for each runtime: requests per second and latency of
# 1,000 clients in lockstep and pipelined, and the memory of 15,000 idle clients.
#
# Usage: tests/scripts/load.sh [RUNS]   (from anywhere; default 3 runs of each case)
# Environment: DURATION (seconds of each measured mix, default 10), CLIENTS (1000),
# FILES (files per client, 20), PIPELINE (requests in flight per client, 16),
# IDLE (idle clients, 15000; 0 skips them), RUNTIMES ("mio smol"), ARGS (more loadgen options for the
# lockstep and pipelined runs, e.g. "--loose 0" for selective patterns only), SERVER_BIN (the
# napshare-node binary to serve, e.g. another commit's build, to compare servers under one
# load generator; default: this tree's).
#
# Builds the release binaries first. Every run starts its own server (loadgen
# --spawn-server) on 127.0.0.1, so server and load generator share this machine's
# cores. Prints one line per run and a Markdown table of medians. A run with an error (a
# wrong reply, a missing file, a timeout, a failed connection) is shown and left out of the
# medians, and the script exits with status 1 at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
duration=${DURATION:-10}
clients=${CLIENTS:-1000}
files=${FILES:-20}
pipeline=${PIPELINE:-16}
idle=${IDLE:-15000}
runtimes=${RUNTIMES:-mio smol}
read -r -a extra <<<"${ARGS:-}"

cargo build --release -q -p napshare-tests --bin loadgen --bin napshare-node
lg=target/release/loadgen
server_bin=()
if [ -n "${SERVER_BIN:-}" ]; then
    server_bin=(--server-bin "$SERVER_BIN")
    echo "server: $SERVER_BIN" >&2
fi
echo "commit $(git log -1 --format=%h)$(git diff --quiet HEAD -- core runtime-mio runtime-smol || echo ' (with uncommitted changes)'), $(nproc) cores" >&2

# The number after "KEY": in the JSON object of phase PHASE (or in the whole report).
get() { # json phase key
    local part=$1
    if [ -n "$2" ]; then
        part=${part#*\"$2\": \{}
    fi
    part=${part#*\"$3\": }
    echo "${part%%[,\}]*}"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A result
failed=0

# Shows what went wrong in a failed run.
show_failure() { # what json
    echo "$1 failed: errors $(get "$2" errors total), e.g. $(echo "$2" | grep -o '"error_examples": \[.*' | cut -c1-400)" >&2
    failed=1
}

run_case() { # name runtime args...
    local name=$1 rt=$2
    shift 2
    local rps=() p50=() p99=() p999=() lg_cpu=() sv_cpu=()
    for i in $(seq "$runs"); do
        local json
        if ! json=$("$lg" --spawn-server "$rt" "${server_bin[@]}" --json --quiet "$@" 2>/dev/null); then
            show_failure "$name $rt run $i" "$json"
            continue
        fi
        json=${json#*\"phases\": }
        # The latency of all requests of the mix: the "all" entry after the mix's.
        local mix=${json#*\"mix\": \{}
        local all=${mix#*\"all\": \{}
        rps+=("$(get "$json" mix rps)")
        p50+=("$(get "$all" "" p50_us)")
        p99+=("$(get "$all" "" p99_us)")
        p999+=("$(get "$all" "" p999_us)")
        lg_cpu+=("$(get "$json" mix loadgen_cpu_s)")
        sv_cpu+=("$(get "$json" mix server_cpu_s)")
        echo "$name $rt run $i: $(get "$json" mix rps) req/s, p50 ${p50[-1]} us, p99 ${p99[-1]} us, p99.9 ${p999[-1]} us; cpu loadgen ${lg_cpu[-1]} s, server ${sv_cpu[-1]} s; search lines $(get "$json" mix search_lines)" >&2
    done
    if [ ${#rps[@]} -eq 0 ]; then
        result[$name,$rt]="failed | | |"
        return
    fi
    result[$name,$rt]="$(printf '%s\n' "${rps[@]}" | median | xargs printf '%.0f') | $(printf '%s\n' "${p50[@]}" | median) | $(printf '%s\n' "${p99[@]}" | median) | $(printf '%s\n' "${p999[@]}" | median)"
}

run_idle() { # runtime
    local rt=$1 rss=() per=()
    for i in $(seq "$runs"); do
        local json
        if ! json=$("$lg" --spawn-server "$rt" "${server_bin[@]}" --json --quiet --clients "$idle" --files 0 \
            --duration 0 --hold 2 2>/dev/null); then
            show_failure "idle $rt run $i" "$json"
            continue
        fi
        local reg=${json#*\"registered\": \{}
        rss+=("$(get "$reg" "" rss_kib)")
        per+=("$(get "$json" "" bytes_per_client)")
        echo "idle $rt run $i: $idle clients, server VmRSS ${rss[-1]} KiB, ${per[-1]} bytes per client" >&2
    done
    if [ ${#rss[@]} -eq 0 ]; then
        result[idle,$rt]="failed |"
        return
    fi
    result[idle,$rt]="$(printf '%s\n' "${rss[@]}" | median) | $(printf '%s\n' "${per[@]}" | median | xargs printf '%.0f')"
}

for rt in $runtimes; do
    run_case lockstep "$rt" --clients "$clients" --files "$files" --duration "$duration" \
        "${extra[@]}"
    run_case pipelined "$rt" --clients "$clients" --files "$files" --duration "$duration" \
        --pipeline "$pipeline" "${extra[@]}"
    if [ "$idle" -gt 0 ]; then
        run_idle "$rt"
    fi
done

echo
echo "Medians of the successful runs of $runs; $clients clients x $files files, mix search 90% create 5% delete 5%, $duration s each${ARGS:+, $ARGS}."
echo
echo "| runtime | mode | req/s | p50 (us) | p99 (us) | p99.9 (us) |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
for rt in $runtimes; do
    echo "| $rt | lockstep | ${result[lockstep,$rt]} |"
    echo "| $rt | pipelined x$pipeline | ${result[pipelined,$rt]} |"
done
if [ "$idle" -gt 0 ]; then
    echo
    echo "| runtime | idle clients | server VmRSS (KiB) | bytes per client |"
    echo "| --- | ---: | ---: | ---: |"
    for rt in $runtimes; do
        echo "| $rt | $idle | ${result[idle,$rt]} |"
    done
fi
exit $failed
