#!/usr/bin/env bash
# bench/compare.sh — run the same workloads on Go, tokio, may and gort,
# RUNS times each, and print a markdown table of medians and gort's ratios.
#
#   bench/compare.sh                  # all workloads
#   bench/compare.sh spawn gosched    # only these
#   bench/compare.sh http100 http1000 hog
#   RUNS=9 TIMEOUT=60 bench/compare.sh
#   RUNTIMES="go tokio may" bench/compare.sh   # leave a column out ("skipped")
#
# Environment:
#   RUNS         runs per (workload, runtime) cell, median reported   [5]
#   TIMEOUT      seconds allowed for one run                          [120]
#   RUNTIMES     runtimes to build and run, space separated           [go tokio may gort]
#   SKIP_BUILD   1 = use the binaries already built                   [0]
#   NO_INSTALL   1 = never apt-get install Go or wrk                  [0]
#   MAY_MEMORY_N coroutines for may's memory run (see README)         [30000]
#   WRK_SECONDS  length of one wrk run in the http workloads          [5]
#
# Units: ns/..., ms and bytes are lower-is-better; req/s (http100, http1000)
# is higher-is-better, and the table says so on those rows.
# http workloads: the harness starts `BIN serve-http 127.0.0.1:PORT` (a free
# port per run), waits until it accepts, checks two pipelined requests, runs
# `wrk -t1 -c<N> -d<WRK_SECONDS>s`, reads "Requests/sec:" and kills the server.
#
# Writes the same report to bench/results.md. Logs: bench/target/logs/.
# Never aborts on a failing peer: a cell that fails shows "fails", "timeout",
# "build fails", "no wrk" or "n/a" (workload not implemented by that program);
# a hog median of 1000 ms or more shows "starves".
#
# To add a workload: add its name to WORKLOADS and its unit to UNIT below, and
# implement it in bench/go/main.go, bench/peers/src/bin/{tokio,may}.rs and
# bench/gort/src/main.rs (each is a `match` on the workload name).

set -uo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUNS="${RUNS:-5}"
TIMEOUT="${TIMEOUT:-120}"
SKIP_BUILD="${SKIP_BUILD:-0}"
NO_INSTALL="${NO_INSTALL:-0}"
MAY_MEMORY_N="${MAY_MEMORY_N:-30000}"
WRK_SECONDS="${WRK_SECONDS:-5}"
TARGET="$BENCH/target"
LOGS="$TARGET/logs"

# ---------------------------------------------------------------- registry --
# Workloads, in table order, with the unit of the number each program prints.
WORKLOADS=(spawn gosched memory pingpong skynet threadring prodcons http100 http1000 hog)
declare -A UNIT=(
    [spawn]="ns/goroutine"
    [gosched]="ns/yield"
    [memory]="bytes/goroutine"
    [pingpong]="ns/round trip"
    [skynet]="ms"
    [threadring]="ns/hop"
    [prodcons]="ns/item"
    [http100]="req/s"
    [http1000]="req/s"
    [hog]="ms"
)
# Lower is better unless the workload is listed here.
declare -A HIGHER_BETTER=([http100]=1 [http1000]=1)
# http workloads: wrk's connection count. They run `BIN serve-http ADDR`, driven by wrk.
declare -A HTTP_CONNS=([http100]=100 [http1000]=1000)
# A median at or above this is shown as "starves" (the number stays under "all runs").
declare -A STARVES_AT=([hog]=1000)
# Notes printed under the table when the workload was selected.
declare -A WORKLOAD_NOTE=(
    [http100]="http100/http1000: wrk -t1 -c<N> -d${WRK_SECONDS}s against each runtime's hand-written keep-alive server (one goroutine/task/coroutine per connection, all CPUs as workers). wrk runs on the same machine and shares its $(nproc) cores with the server, so req/s are lower than with a separate client; the columns are measured the same way."
    [hog]="hog: one P/worker; the spinner is stopped after 3 s at the latest, so a sleeper starved for the whole time is ~2980 ms late. Medians of 1000 ms or more are shown as \"starves\" (numbers under \"all runs\")."
)
WORKLOAD_NOTE[http1000]="${WORKLOAD_NOTE[http100]}"

# Runtimes, in column order; gort is the one compared against the others.
ALL_RUNTIMES=(go tokio may gort)
PEERS=(go tokio may)
declare -A TITLE=([go]="Go" [tokio]="tokio" [may]="may" [gort]="gort")
declare -A BIN=(
    [go]="$TARGET/bench-go"
    [tokio]="$BENCH/peers/target/release/tokio"
    [may]="$BENCH/peers/target/release/may"
    [gort]="$BENCH/gort/target/release/gort"
)

# Per-cell extra arguments ("<workload>:<runtime>") and the note shown for them
# (a note is shown whenever its cell ran, whether it succeeded or failed).
# Every program is run as: BIN[rt] <workload> [extra args]
declare -A EXTRA_ARGS=(
    [memory:may]="$MAY_MEMORY_N"
)
group3() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }  # 30000 -> 30,000
MAX_MAP_COUNT=$(cat /proc/sys/vm/max_map_count 2>/dev/null || echo '?')
declare -A CELL_NOTE=(
    [hog:may]="may's hog: a coroutine whose sleep ends is resumed on may's timer thread, not on its one worker, so a sleep is not held up by the spinner (wake-ups by channels or I/O would be)."
    [memory:may]="may is measured with $(group3 "$MAY_MEMORY_N") coroutines, not 1,000,000: it maps every coroutine stack separately (stack + guard page), so it cannot go much past ~32k live coroutines under the default vm.max_map_count ($MAX_MAP_COUNT)."
    [skynet:may]="skynet can have up to ~1.1M coroutines alive at once; may maps every coroutine stack separately (stack + guard page), so it fails (\"failed to alloc sys stack\") at ~32k live coroutines unless vm.max_map_count (here $MAX_MAP_COUNT) is raised."
)
declare -A CELL_TAG=(
    [memory:may]="(n=$((MAY_MEMORY_N / 1000))k)"
)

# ---------------------------------------------------------------- helpers --
log() { printf '%s\n' "$*" >&2; }

usage() {
    sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    echo "Workloads: ${WORKLOADS[*]}"
}

is_number() { [[ "$1" =~ ^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$ ]]; }

median() { # numbers... -> median
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
        END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

fmt_num() { # a number, with precision that fits its size
    awk -v v="$1" 'BEGIN {
        a = v < 0 ? -v : v
        if (a >= 100) printf "%.0f", v; else if (a >= 10) printf "%.1f", v; else printf "%.2f", v }'
}

ratio() { # gort peer -> gort/peer
    awk -v g="$1" -v p="$2" 'BEGIN { if (p == 0) print "—"; else printf "%.2f", g / p }'
}

# ---------------------------------------------------------------- arguments --
SELECTED=()
for arg in "$@"; do
    case "$arg" in
        -h|--help) usage; exit 0 ;;
    esac
    found=0
    for w in "${WORKLOADS[@]}"; do [[ "$w" == "$arg" ]] && found=1; done
    if (( ! found )); then
        log "unknown workload: $arg (known: ${WORKLOADS[*]})"
        exit 2
    fi
    SELECTED+=("$arg")
done
(( ${#SELECTED[@]} )) || SELECTED=("${WORKLOADS[@]}")

read -r -a RUN_RUNTIMES <<< "${RUNTIMES:-${ALL_RUNTIMES[*]}}"
declare -A ENABLED=()
for rt in "${RUN_RUNTIMES[@]}"; do
    [[ -n "${BIN[$rt]:-}" ]] || { log "unknown runtime: $rt (known: ${ALL_RUNTIMES[*]})"; exit 2; }
    ENABLED[$rt]=1
done

if ! [[ "$RUNS" =~ ^[1-9][0-9]*$ ]]; then log "RUNS must be a positive integer"; exit 2; fi
if ! command -v timeout >/dev/null; then log "'timeout' (coreutils) is required"; exit 2; fi

mkdir -p "$LOGS"

# ---------------------------------------------------------------- build --
# BUILT[rt] = 1 if the runtime's binary is usable.
declare -A BUILT=()

ensure_cmd() { # command apt-package -> installs the package if the command is missing
    local cmd=$1 pkg=$2
    command -v "$cmd" >/dev/null && return 0
    if [[ "$NO_INSTALL" == 1 ]]; then log "$cmd not found and NO_INSTALL=1"; return 1; fi
    if ! command -v apt-get >/dev/null; then log "$cmd not found and no apt-get to install it"; return 1; fi
    local sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then sudo=(sudo); fi
    log "installing $cmd ($pkg) with apt-get ... (log: ${LOGS#"$BENCH"/}/install-$cmd.log)"
    { "${sudo[@]}" apt-get update -qq &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg"; } \
        >"$LOGS/install-$cmd.log" 2>&1
    command -v "$cmd" >/dev/null || { log "  installing $cmd FAILED"; return 1; }
}
ensure_go() { ensure_cmd go golang-go; }

build_go() {
    command -v go >/dev/null || { echo "go not found"; return 1; }
    # Go refuses to build without a cache dir; $HOME may be unset in CI.
    if [[ -z "${HOME:-}" && -z "${GOCACHE:-}" ]]; then export GOCACHE="$TARGET/go-cache"; fi
    (cd "$BENCH/go" && GOTOOLCHAIN=local GOFLAGS="" go build -o "${BIN[go]}" .)
}

build_cargo() { # manifest dir
    if ! command -v cargo >/dev/null; then log "cargo not found"; return 1; fi
    (cd "$BENCH/$1" && env -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET cargo build --release)
}

build() { # step-name runtimes... -- command...
    local name=$1; shift
    local rts=()
    while [[ "$1" != -- ]]; do rts+=("$1"); shift; done
    shift
    local want=0 rt
    for rt in "${rts[@]}"; do [[ -n "${ENABLED[$rt]:-}" ]] && want=1; done
    (( want )) || return 0
    local ok=1
    if [[ "$SKIP_BUILD" != 1 ]]; then
        log "building $name ... (log: ${LOGS#"$BENCH"/}/build-$name.log)"
        if ! "$@" >"$LOGS/build-$name.log" 2>&1; then
            ok=0
            log "  build of $name FAILED; last lines:"
            tail -n 15 "$LOGS/build-$name.log" | sed 's/^/    /' >&2
        fi
    fi
    for rt in "${rts[@]}"; do
        if (( ok )) && [[ -x "${BIN[$rt]}" ]]; then BUILT[$rt]=1; else BUILT[$rt]=0; fi
    done
}

if [[ -n "${ENABLED[go]:-}" && "$SKIP_BUILD" != 1 ]]; then ensure_go; fi
WRK_OK=1
for w in "${SELECTED[@]}"; do
    if [[ -n "${HTTP_CONNS[$w]:-}" ]]; then
        ensure_cmd wrk wrk || WRK_OK=0
        # wrk and the server each need a descriptor per connection: raise the soft limit.
        ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
        break
    fi
done
build go go -- build_go
build peers tokio may -- build_cargo peers
build gort gort -- build_cargo gort

# ---------------------------------------------------------------- run --
# STATUS[w:rt]: ok | fails | timeout | n/a | build fails | skipped | no wrk
# VALS[w:rt]:   the RESULT numbers of the successful runs
# SOCKERR[w:rt]: runs in which wrk reported socket errors (http workloads)
declare -A STATUS=() VALS=() SOCKERR=()

# The http workloads' server, if one is running; never left behind.
SERVER_PID=""
stop_server() {
    [[ -n "$SERVER_PID" ]] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null
    local t
    for ((t = 0; t < 50; t++)); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=""
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_open() { # port -> 0 if something accepts connections on 127.0.0.1:port
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

free_port() { # -> a port nobody listens on, below the ephemeral range (wrk's client ports)
    local lo p t
    lo=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
    [[ "$lo" =~ ^[0-9]+$ ]] && ((lo > 11000)) || lo=32768
    for ((t = 0; t < 50; t++)); do
        p=$((10000 + RANDOM % (lo - 10000)))
        port_open "$p" || { echo "$p"; return 0; }
    done
    return 1
}

http_check() { # port -> 0 if two pipelined requests get exactly two answers
    local one='HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!'
    local req='GET / HTTP/1.1\r\nHost: localhost\r\n\r\n' want got
    want=$(printf '%b%b' "$one" "$one" | od -An -c)
    # shellcheck disable=SC2016  # the inner script's $1.. are its own arguments
    got=$(timeout 5 bash -c '
        exec 3<>/dev/tcp/127.0.0.1/$1 || exit 1
        printf "%b%b" "$2" "$2" >&3
        head -c "$3" <&3' _ "$1" "$req" "$(printf '%b%b' "$one" "$one" | wc -c)" | od -An -c)
    [[ "$got" == "$want" ]]
}

run_http() { # workload runtime run-index
    local w=$1 rt=$2 i=$3 key="$1:$2" conns=${HTTP_CONNS[$1]}
    local errlog="$LOGS/$w-$rt.log" port rc t out value
    if ! port=$(free_port); then
        STATUS[$key]=fails; log "[$w $i/$RUNS] $rt: fails (no free port found)"; return
    fi
    local cmd=("${BIN[$rt]}" serve-http "127.0.0.1:$port")
    echo "=== run $i: ${cmd[*]}" >>"$errlog"
    (cd "$BENCH" && exec "${cmd[@]}") </dev/null >>"$errlog" 2>&1 &
    SERVER_PID=$!
    # Wait (up to 10 s) until the server accepts connections.
    for ((t = 0; t < 100; t++)); do
        port_open "$port" && break
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
        sleep 0.1
    done
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        wait "$SERVER_PID"; rc=$?; SERVER_PID=""
        if ((rc == 3)); then STATUS[$key]="n/a"; else STATUS[$key]=fails; fi
        log "[$w $i/$RUNS] $rt: ${STATUS[$key]} (server exited with $rc; log: ${errlog#"$BENCH"/})"
        return
    fi
    if ((t == 100)); then
        stop_server; STATUS[$key]=fails
        log "[$w $i/$RUNS] $rt: fails (server did not accept on port $port in 10 s)"
        return
    fi
    if ! http_check "$port"; then
        stop_server; STATUS[$key]=fails
        echo "wrong result: two pipelined GETs did not get exactly two \"Hello, world!\" responses" >>"$errlog"
        log "[$w $i/$RUNS] $rt: fails (wrong answer to pipelined requests; log: ${errlog#"$BENCH"/})"
        return
    fi
    local wrk=(wrk -t1 "-c$conns" "-d${WRK_SECONDS}s" "http://127.0.0.1:$port/")
    echo "--- ${wrk[*]}" >>"$errlog"
    out=$(timeout -k 5 $((WRK_SECONDS + 60)) "${wrk[@]}" 2>&1 </dev/null)
    rc=$?
    printf '%s\n' "$out" >>"$errlog"
    local alive=1
    kill -0 "$SERVER_PID" 2>/dev/null || alive=0
    stop_server
    value=$(printf '%s\n' "$out" | awk '$1 == "Requests/sec:" { print $2 }')
    if ((!alive)); then
        STATUS[$key]=fails; log "[$w $i/$RUNS] $rt: fails (server died under load; log: ${errlog#"$BENCH"/})"
    elif ((rc != 0)) || ! is_number "$value"; then
        STATUS[$key]=fails; log "[$w $i/$RUNS] $rt: fails (wrk exit $rc, no Requests/sec; log: ${errlog#"$BENCH"/})"
    elif printf '%s\n' "$out" | grep -q 'Non-2xx or 3xx responses'; then
        STATUS[$key]=fails; log "[$w $i/$RUNS] $rt: fails (non-2xx responses; log: ${errlog#"$BENCH"/})"
    else
        VALS[$key]="${VALS[$key]:-} $value"
        if printf '%s\n' "$out" | grep -q 'Socket errors'; then
            SOCKERR[$key]=$((${SOCKERR[$key]:-0} + 1))
            log "[$w $i/$RUNS] $rt: $value ${UNIT[$w]} (wrk: $(printf '%s\n' "$out" | grep -o 'Socket errors.*'))"
        else
            log "[$w $i/$RUNS] $rt: $value ${UNIT[$w]}"
        fi
    fi
}

run_one() { # workload runtime run-index
    local w=$1 rt=$2 i=$3 key="$1:$2"
    local cmd=("${BIN[$rt]}" "$w")
    if [[ -n "${EXTRA_ARGS[$key]:-}" ]]; then
        local extra
        read -r -a extra <<< "${EXTRA_ARGS[$key]}"
        cmd+=("${extra[@]}")
    fi
    local errlog="$LOGS/$w-$rt.log" out rc value
    echo "=== run $i: ${cmd[*]}" >>"$errlog"
    out=$(cd "$BENCH" && timeout -k 10 "$TIMEOUT" "${cmd[@]}" 2>>"$errlog" </dev/null)
    rc=$?
    printf '%s\n' "$out" >>"$errlog"
    value=$(printf '%s\n' "$out" | awk '$1 == "RESULT" { v = $2 } END { print v }')
    if (( rc == 0 )) && is_number "$value"; then
        VALS[$key]="${VALS[$key]:-} $value"
        log "[$w $i/$RUNS] $rt: $value ${UNIT[$w]}"
    else
        case $rc in
            124|137) STATUS[$key]=timeout ;;
            3) STATUS[$key]="n/a" ;;
            *) STATUS[$key]=fails ;;
        esac
        log "[$w $i/$RUNS] $rt: ${STATUS[$key]} (exit $rc; log: ${errlog#"$BENCH"/})"
    fi
}

for w in "${SELECTED[@]}"; do
    for rt in "${ALL_RUNTIMES[@]}"; do
        key="$w:$rt"
        : >"$LOGS/$w-$rt.log"
        if [[ -z "${ENABLED[$rt]:-}" ]]; then STATUS[$key]=skipped
        elif [[ "${BUILT[$rt]:-0}" != 1 ]]; then STATUS[$key]="build fails"
        elif [[ -n "${HTTP_CONNS[$w]:-}" && "$WRK_OK" != 1 ]]; then STATUS[$key]="no wrk"
        else STATUS[$key]=ok
        fi
    done
    # Runs are interleaved (run 1 of every runtime, then run 2, ...) so slow
    # drift of the machine affects all columns alike. A cell that failed once
    # is not run again.
    for ((i = 1; i <= RUNS; i++)); do
        for rt in "${ALL_RUNTIMES[@]}"; do
            [[ "${STATUS[$w:$rt]}" == ok ]] || continue
            if [[ -n "${HTTP_CONNS[$w]:-}" ]]; then run_http "$w" "$rt" "$i"
            else run_one "$w" "$rt" "$i"; fi
        done
    done
done

# ---------------------------------------------------------------- report --
declare -A MED=()
cell() { # workload runtime -> table cell
    local key="$1:$2"
    if [[ "${STATUS[$key]}" == ok ]]; then
        local c
        if starves "$1" "$2"; then printf 'starves'; return; fi
        c=$(fmt_num "${MED[$key]}")
        [[ -n "${CELL_TAG[$key]:-}" ]] && c="$c ${CELL_TAG[$key]}"
        printf '%s' "$c"
    else
        printf '%s' "${STATUS[$key]}"
    fi
}

starves() { # workload runtime -> 0 if the cell's median reaches the workload's STARVES_AT
    local lim=${STARVES_AT[$1]:-}
    [[ -n "$lim" ]] && awk -v m="${MED[$1:$2]}" -v l="$lim" 'BEGIN { exit !(m >= l) }'
}

version_of() { # crate -> version from peers/Cargo.lock
    awk -v n="$1" '$0 == "name = \"" n "\"" { getline; gsub(/version = |"/, ""); print; exit }' \
        "$BENCH/peers/Cargo.lock" 2>/dev/null
}

report() {
    local cpu mem gov rustv gortrev
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
    mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null)
    gov=$(command -v go >/dev/null && go version || echo "go not installed")
    rustv=$(rustc --version 2>/dev/null || echo "rustc not found")
    gortrev=$(git -C "$BENCH/.." log -1 --format='%h %cs' 2>/dev/null || echo "no commit")
    if [[ -n "$(git -C "$BENCH/.." status --porcelain -- src Cargo.toml 2>/dev/null)" ]]; then
        gortrev="$gortrev + uncommitted changes"
    fi

    echo "# gort vs Go, tokio, may"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: nproc=$(nproc), ${cpu:-unknown CPU}, $mem RAM, Linux $(uname -r)"
    echo "- $gov; $rustv"
    echo "- tokio $(version_of tokio), may $(version_of may), gort at $gortrev"
    local w rt notes=() head="| workload" rule="|---" any_http=0 any_higher=0
    for w in "${SELECTED[@]}"; do
        [[ -n "${HTTP_CONNS[$w]:-}" ]] && any_http=1
        [[ -n "${HIGHER_BETTER[$w]:-}" ]] && any_higher=1
        [[ -n "${WORKLOAD_NOTE[$w]:-}" ]] && notes+=("${WORKLOAD_NOTE[$w]}")
    done
    if ((any_http)); then
        echo "- $(wrk --version 2>/dev/null | head -n 1 | awk '{ print $1, $2 }' || true) (http load generator, on this machine)"
    fi
    echo "- $RUNS runs per cell, median shown; timeout ${TIMEOUT}s per run; default worker count everywhere (hog: 1)"
    echo
    for rt in "${ALL_RUNTIMES[@]}"; do head="$head | ${TITLE[$rt]}"; rule="$rule|---:"; done
    for rt in "${PEERS[@]}"; do head="$head | gort/${TITLE[$rt]}"; rule="$rule|---:"; done
    echo "$head |"
    echo "$rule|"
    for w in "${SELECTED[@]}"; do
        for rt in "${ALL_RUNTIMES[@]}"; do
            local key="$w:$rt"
            if [[ "${STATUS[$key]}" == ok ]]; then
                # shellcheck disable=SC2086
                MED[$key]=$(median ${VALS[$key]})
            fi
            case "${STATUS[$key]}" in
                ok|fails|timeout) [[ -n "${CELL_NOTE[$key]:-}" ]] && notes+=("${CELL_NOTE[$key]}") ;;
            esac
            if [[ -n "${SOCKERR[$key]:-}" ]]; then
                notes+=("$w / ${TITLE[$rt]}: wrk reported socket errors in ${SOCKERR[$key]} of its runs (see bench/target/logs/$w-$rt.log).")
            fi
        done
        local row="| $w (${UNIT[$w]})"
        [[ -n "${HIGHER_BETTER[$w]:-}" ]] && row="| $w (${UNIT[$w]}, **higher is better**)"
        for rt in "${ALL_RUNTIMES[@]}"; do row="$row | $(cell "$w" "$rt")"; done
        for rt in "${PEERS[@]}"; do
            if [[ "${STATUS[$w:gort]}" == ok && "${STATUS[$w:$rt]}" == ok ]] &&
                ! starves "$w" gort && ! starves "$w" "$rt"; then
                row="$row | $(ratio "${MED[$w:gort]}" "${MED[$w:$rt]}")"
            else
                row="$row | —"
            fi
        done
        echo "$row |"
    done
    echo
    if ((any_higher)); then
        echo "Ratios are gort / peer. Lower is better, except in the rows marked **higher is better** (req/s), where a ratio above 1 means gort serves more requests than that peer; everywhere else a ratio below 1 means gort is faster / smaller. A ratio is left out (—) when either cell has no number or starves."
    else
        echo "Lower is better everywhere; a ratio below 1 means gort is faster / smaller than that peer."
    fi
    local n
    declare -A said=()
    for n in "${notes[@]}"; do
        [[ -n "${said[$n]:-}" ]] && continue
        said[$n]=1
        echo "- $n"
    done
    echo
    echo "<details><summary>all runs</summary>"
    echo
    for w in "${SELECTED[@]}"; do
        for rt in "${ALL_RUNTIMES[@]}"; do
            local key="$w:$rt" v
            v="${VALS[$key]:-}"; v="${v# }"
            [[ "${STATUS[$key]}" != ok ]] && v="${v:+$v; then }${STATUS[$key]}"
            echo "- $w / $rt: ${v:-—}"
        done
    done
    echo
    echo "</details>"
}

REPORT=$(report)
printf '%s\n' "$REPORT" >"$BENCH/results.md"
printf '%s\n' "$REPORT"
log "written to ${BENCH}/results.md"
