#!/usr/bin/env bash
# bench/compare.sh — run the same workloads on Go, tokio, may and gort,
# RUNS times each, and print a markdown table of medians and gort's ratios.
#
#   bench/compare.sh                  # all workloads
#   bench/compare.sh spawn gosched    # only these
#   RUNS=9 TIMEOUT=60 bench/compare.sh
#   RUNTIMES="go tokio may" bench/compare.sh   # leave a column out ("skipped")
#
# Environment:
#   RUNS         runs per (workload, runtime) cell, median reported   [5]
#   TIMEOUT      seconds allowed for one run                          [120]
#   RUNTIMES     runtimes to build and run, space separated           [go tokio may gort]
#   SKIP_BUILD   1 = use the binaries already built                   [0]
#   NO_INSTALL   1 = never apt-get install Go                         [0]
#   MAY_MEMORY_N coroutines for may's memory run (see README)         [30000]
#
# Writes the same report to bench/results.md. Logs: bench/target/logs/.
# Never aborts on a failing peer: a cell that fails shows "fails", "timeout",
# "build fails" or "n/a" (workload not implemented by that program).
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
TARGET="$BENCH/target"
LOGS="$TARGET/logs"

# ---------------------------------------------------------------- registry --
# Workloads, in table order, with the unit of the number each program prints.
WORKLOADS=(spawn gosched memory pingpong skynet threadring prodcons)
declare -A UNIT=(
    [spawn]="ns/goroutine"
    [gosched]="ns/yield"
    [memory]="bytes/goroutine"
    [pingpong]="ns/round trip"
    [skynet]="ms"
    [threadring]="ns/hop"
    [prodcons]="ns/item"
)

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

ensure_go() {
    command -v go >/dev/null && return 0
    if [[ "$NO_INSTALL" == 1 ]]; then log "go not found and NO_INSTALL=1"; return 1; fi
    if ! command -v apt-get >/dev/null; then log "go not found and no apt-get to install it"; return 1; fi
    local sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then sudo=(sudo); fi
    log "installing Go (golang-go) with apt-get ... (log: ${LOGS#"$BENCH"/}/install-go.log)"
    { "${sudo[@]}" apt-get update -qq &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go; } \
        >"$LOGS/install-go.log" 2>&1
    command -v go >/dev/null || { log "  installing Go FAILED"; return 1; }
}

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
build go go -- build_go
build peers tokio may -- build_cargo peers
build gort gort -- build_cargo gort

# ---------------------------------------------------------------- run --
# STATUS[w:rt]: ok | fails | timeout | n/a | build fails | skipped
# VALS[w:rt]:   the RESULT numbers of the successful runs
declare -A STATUS=() VALS=()

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
        else STATUS[$key]=ok
        fi
    done
    # Runs are interleaved (run 1 of every runtime, then run 2, ...) so slow
    # drift of the machine affects all columns alike. A cell that failed once
    # is not run again.
    for ((i = 1; i <= RUNS; i++)); do
        for rt in "${ALL_RUNTIMES[@]}"; do
            [[ "${STATUS[$w:$rt]}" == ok ]] && run_one "$w" "$rt" "$i"
        done
    done
done

# ---------------------------------------------------------------- report --
declare -A MED=()
cell() { # workload runtime -> table cell
    local key="$1:$2"
    if [[ "${STATUS[$key]}" == ok ]]; then
        local c
        c=$(fmt_num "${MED[$key]}")
        [[ -n "${CELL_TAG[$key]:-}" ]] && c="$c ${CELL_TAG[$key]}"
        printf '%s' "$c"
    else
        printf '%s' "${STATUS[$key]}"
    fi
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
    echo "- $RUNS runs per cell, median shown; timeout ${TIMEOUT}s per run; default worker count everywhere"
    echo
    local w rt notes=() head="| workload" rule="|---"
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
        done
        local row="| $w (${UNIT[$w]})"
        for rt in "${ALL_RUNTIMES[@]}"; do row="$row | $(cell "$w" "$rt")"; done
        for rt in "${PEERS[@]}"; do
            if [[ "${STATUS[$w:gort]}" == ok && "${STATUS[$w:$rt]}" == ok ]]; then
                row="$row | $(ratio "${MED[$w:gort]}" "${MED[$w:$rt]}")"
            else
                row="$row | —"
            fi
        done
        echo "$row |"
    done
    echo
    echo "Lower is better everywhere; a ratio below 1 means gort is faster / smaller than that peer."
    local n
    for n in "${notes[@]}"; do echo "- $n"; done
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
