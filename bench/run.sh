#!/bin/sh
# run.sh — runs the benchmark suite (../shared/bench-spec.md) and collects
# the result lines into a table, bench/results/<date>.csv and, if gnuplot is
# installed, a bar chart bench/results/<date>.png.
#
#   BUILD=build/release   where the programs are (bench/ below it)
#   BENCH_SCALE=small     much smaller sizes: the suite in seconds, a smoke
#                         test (results go to <date>-small.*, not to the
#                         day's real figures)
#   BENCH_THREADS=N       passed as --threads N (default: online CPUs); the
#                         servers of the network workloads get TROUPE_THREADS=N
#   BENCH_TIMEOUT=S       seconds before a benchmark counts as hung
#   BENCH_OUT=DIR         where results go (default bench/results)
#
# The actor benchmarks come first, then the network workloads (echo-rr,
# echo-stream, echo-idle against examples/echo, chat-fanout against
# examples/chat): for each, a fresh server on a port it picks (parsed from
# its "listening on ...:<port>" line), driven by bench/loadgen in its own
# process, then stopped with SIGTERM. A server that fails to start, exits
# non-zero (a sanitizer report, a leak) or does not stop fails its row.
# chat-fanout is skipped, with a note, while examples/chat is not built.
#
# Exits non-zero if any benchmark fails its check, crashes or hangs, after
# running the rest.
#
# shellcheck disable=SC2086  # $limit, $args and $threads_arg are word lists

cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build/release}
SCALE=${BENCH_SCALE:-default}
BENCHES="pingpong counting fjthroughput fjcreation threadring chameneos big skynet fanin idlemem timers"
NET_BENCHES="echo-rr echo-stream echo-idle chat-fanout"
LOADGEN=$BUILD/bench/loadgen

case $SCALE in
default) suffix=""; timeout_s=${BENCH_TIMEOUT:-600} ;;
small)   suffix="-small"; timeout_s=${BENCH_TIMEOUT:-60} ;;
*)       echo "run.sh: BENCH_SCALE must be empty, default or small" >&2; exit 2 ;;
esac

# Sizes for BENCH_SCALE=small: a tenth of the defaults or less.
small_args() {
    case $1 in
    pingpong)     echo "--n 100000" ;;
    counting)     echo "--n 1000000" ;;
    fjthroughput) echo "--actors 60 --n 10000" ;;
    fjcreation)   echo "--n 100000" ;;
    threadring)   echo "--actors 100 --n 1000000" ;;
    chameneos)    echo "--actors 100 --n 200000" ;;
    big)          echo "--actors 120 --n 5000" ;;
    skynet)       echo "--n 100000" ;;
    fanin)        echo "--senders 8 --n 100000" ;;
    idlemem)      echo "--n 100000" ;;
    timers)       echo "--n 100000 --spread_ms 200" ;;
    echo-rr)      echo "--secs 1 --conns 8" ;;
    echo-stream)  echo "--conns 4 --mbytes 4" ;;
    echo-idle)    echo "--conns 500" ;;
    chat-fanout)  echo "--clients 10 --n 100" ;;
    esac
}

# The server a network workload runs against.
net_server() {
    case $1 in
    chat-*) echo "$BUILD/examples/chat" ;;
    *)      echo "$BUILD/examples/echo" ;;
    esac
}

date=$(date +%Y-%m-%d)
outdir=${BENCH_OUT:-bench/results}
csv=$outdir/$date$suffix.csv
png=$outdir/$date$suffix.png
mkdir -p "$outdir" || exit 2
tmp=$(mktemp -d) || exit 2
server_pid=""
server_rc=0
# Never leave a server behind, however this script ends.
trap 'stop_server; rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if command -v timeout >/dev/null 2>&1; then
    limit="timeout $timeout_s"
else
    limit=""
fi
threads_arg=""
[ -n "${BENCH_THREADS:-}" ] && threads_arg="--threads $BENCH_THREADS"
# The servers' worker threads, as their runtime will pick them.
srv_threads=${BENCH_THREADS:-${TROUPE_THREADS:-0}}
[ "$srv_threads" -ge 1 ] 2>/dev/null || srv_threads=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 0)

# The value of key=... in a result line.
field() {
    printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# Whether process $1 is running (an exited child not yet reaped is not).
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    [ "$(sed -n 's/^[0-9]* (.*) \(.\) .*/\1/p' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# The port in a server's "listening on <host>:<port>" line (or "port <n>").
listen_port() {
    l=$(grep -i -m 1 'listen' "$1" 2>/dev/null) || return 0
    p=$(printf '%s\n' "$l" | sed -n 's/.*:\([0-9]\{1,5\}\).*/\1/p')
    [ -n "$p" ] || p=$(printf '%s\n' "$l" | sed -n 's/.*[Pp]ort[ =]*\([0-9]\{1,5\}\).*/\1/p')
    printf '%s' "$p"
}

# Starts server $1 on a port of its choosing; sets server_pid and port once
# it accepts. Returns 1 (why: in $tmp/srv.err) if it does not come up.
start_server() {
    TROUPE_THREADS=$srv_threads "$1" 0 > "$tmp/srv.out" 2> "$tmp/srv.err" &
    server_pid=$!
    port=""
    n=0
    while [ $n -lt 300 ]; do
        port=$(listen_port "$tmp/srv.out")
        [ -n "$port" ] && break
        alive "$server_pid" || break
        sleep 0.1
        n=$((n + 1))
    done
    if [ -z "$port" ]; then
        echo "run.sh: $1 printed no listening port within 30 s" >> "$tmp/srv.err"
        stop_server
        return 1
    fi
    if ! "$LOADGEN" probe --port "$port" --secs 10 2>> "$tmp/srv.err"; then
        stop_server
        return 1
    fi
}

# SIGTERM to the server, SIGKILL if it is still there 10 s later; its exit
# status goes to server_rc.
stop_server() {
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null
    n=0
    while alive "$server_pid" && [ $n -lt 100 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    if alive "$server_pid"; then
        kill -KILL "$server_pid" 2>/dev/null
        echo "run.sh: the server did not stop within 10 s of SIGTERM: killed" >> "$tmp/srv.err"
    fi
    wait "$server_pid"
    server_rc=$?
    server_pid=""
}

# The status of a finished run: rc $1, result line $2.
run_status() {
    check=$(field check "$2")
    if [ "$1" -eq 0 ] && [ "$check" = ok ]; then
        echo ok
    elif [ "$1" -eq 124 ] && [ -n "$limit" ]; then
        echo "hung (>${timeout_s}s)"
    elif [ "$1" -gt 128 ]; then
        echo "crashed (signal $(($1 - 128)))"
    elif [ -n "$2" ]; then
        echo FAIL
    else
        echo "failed (exit $1)"
    fi
}

# Adds the CSV row of benchmark $1, run with args $2, status $3, line $4.
record() {
    if [ -n "$4" ]; then
        params=$(printf '%s\n' "$4" | sed -e 's/.* threads=[0-9]* //' -e 's/ secs=.*//')
        printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$date" "$SCALE" "$1" \
            "$(field impl "$4")" "$(field threads "$4")" "$params" \
            "$(field secs "$4")" "$(field rate "$4")" "$(field unit "$4")" \
            "$3" >> "$csv"
    else
        params=$(echo "$2" | sed 's/--\([a-z_-]*\) \([0-9]*\)/\1=\2/g')
        printf '%s,%s,%s,troupe,,%s,,,,%s\n' "$date" "$SCALE" "$1" "$params" \
            "$3" >> "$csv"
    fi
}

echo "date,scale,bench,impl,threads,params,secs,rate,unit,check" > "$csv"
failed=0
total=$(printf '%s\n' $BENCHES $NET_BENCHES | wc -l)
i=0
for name in $BENCHES; do
    i=$((i + 1))
    args=""
    [ "$SCALE" = small ] && args=$(small_args "$name")
    prog=$BUILD/bench/$name
    : > "$tmp/err"
    printf '[%d/%d] %s ... ' "$i" "$total" \
        "$name${args:+ $args}${threads_arg:+ $threads_arg}" >&2
    if [ ! -x "$prog" ]; then
        status="missing"
        line=""
    else
        $limit "$prog" $args $threads_arg > "$tmp/out" 2> "$tmp/err"
        rc=$?
        line=$(grep '^bench=' "$tmp/out" | head -n 1)
        status=$(run_status "$rc" "$line")
    fi
    [ "$status" = ok ] || failed=1
    echo "$status" >&2
    # The program's own stderr: why a check failed, or what crashed.
    [ -s "$tmp/err" ] && sed 's/^/    /' "$tmp/err" >&2
    record "$name" "$args" "$status" "$line"
done

# The network workloads: loadgen (one thread, its own process) against a
# fresh server each, so that echo-idle's memory figure starts clean.
# loadgen's own deadline comes a little before the hang limit, so that a
# stuck run says where it stuck.
lg_timeout=$((timeout_s > 20 ? timeout_s - 10 : timeout_s))
for name in $NET_BENCHES; do
    i=$((i + 1))
    args=""
    [ "$SCALE" = small ] && args=$(small_args "$name")
    server=$(net_server "$name")
    : > "$tmp/err"
    : > "$tmp/srv.err"
    printf '[%d/%d] %s ... ' "$i" "$total" \
        "$name${args:+ $args} (server threads $srv_threads)" >&2
    line=""
    if [ "$name" = chat-fanout ] && [ ! -x "$server" ]; then
        echo "skipped ($server is not built)" >&2
        continue
    fi
    if [ ! -x "$LOADGEN" ] || [ ! -x "$server" ]; then
        status="missing"
    elif ! start_server "$server"; then
        status="failed (the server did not start)"
    else
        $limit "$LOADGEN" "$name" $args --port "$port" --server-pid "$server_pid" \
            --threads "$srv_threads" --timeout "$lg_timeout" > "$tmp/out" 2> "$tmp/err"
        rc=$?
        line=$(grep '^bench=' "$tmp/out" | head -n 1)
        status=$(run_status "$rc" "$line")
        stop_server
        if [ "$server_rc" -ne 0 ] && [ "$status" = ok ]; then
            if [ "$server_rc" -gt 128 ]; then
                status="server crashed (signal $((server_rc - 128)))"
            else
                status="server failed (exit $server_rc)"
            fi
        fi
    fi
    [ "$status" = ok ] || failed=1
    echo "$status" >&2
    [ -s "$tmp/err" ] && sed 's/^/    /' "$tmp/err" >&2
    # The server's stderr: a sanitizer report, or why it did not start.
    [ -s "$tmp/srv.err" ] && sed 's/^/    server: /' "$tmp/srv.err" >&2
    record "$name" "$args" "$status" "$line"
done

echo
printf '%-14s %14s  %-12s %9s  %-6s %s\n' benchmark rate unit seconds check parameters
tail -n +2 "$csv" | while IFS=, read -r _d _s name _impl _t params secs rate unit check; do
    printf '%-14s %14s  %-12s %9s  %-6s %s\n' "$name" "$rate" "$unit" "$secs" "$check" "$params"
done
echo "results: $csv" >&2

if command -v gnuplot >/dev/null 2>&1; then
    # One bar per benchmark that passed; rates span six orders of
    # magnitude (and idlemem and echo-idle are bytes), hence the log scale.
    awk -F, 'NR > 1 && $10 == "ok" { print $3, $8 }' "$csv" > "$tmp/plot.dat"
    if [ -s "$tmp/plot.dat" ]; then
        threads=$(awk -F, 'NR == 2 { print $5 }' "$csv")
        rm -f "$png"
        gnuplot <<EOF
set terminal png size 1200,600
set output '$png'
set title 'troupe benchmarks, $date, $SCALE sizes, $threads threads (log scale)'
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.8
set logscale y
set yrange [1:*]
set ylabel 'rate per second (idlemem, echo-idle: bytes per actor, per connection)'
set grid ytics
plot '$tmp/plot.dat' using 2:xticlabels(1) notitle, \
     '' using 0:2:(sprintf('%.3g', \$2)) with labels offset 0,1 notitle
EOF
        [ -f "$png" ] && echo "chart: $png" >&2
    fi
fi

exit $failed
