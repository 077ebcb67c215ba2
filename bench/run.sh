#!/bin/sh
# run.sh — runs the benchmark suite (docs/bench.md) and collects
# the result lines into a table (bench/summary.awk), bench/results/<date>.csv
# and, if gnuplot is installed, a chart bench/results/<date>.png.
#
#   BUILD=build/release   where the programs are (bench/ below it)
#   BENCH_SCALE=small     much smaller sizes: the suite in seconds, a smoke
#                         test (results go to <date>-small.*, not to the
#                         day's real figures)
#   BENCH_THREADS="N..."  worker threads: --threads N for the actor
#                         benchmarks, TROUPE_THREADS=N for the servers
#                         (default: the runtime's own choice, the online
#                         CPUs). A list ("1 2 4 8 16") runs every benchmark,
#                         the network workloads included, at each count; the
#                         table then has a column per count, and the ratio
#                         of the largest count's rate to the smallest's
#                         ("2 16" on 2 cores: does oversubscription cost?)
#   BENCH_REPS=R          the whole suite R times (default 1), interleaved:
#                         every benchmark once, then again, so that a slow
#                         spell of a shared machine hits all of them alike.
#                         The table shows each benchmark's median run and
#                         its spread (max / min)
#   BENCH_ONLY="w..."     only these benchmarks: names, "actors", "net" or "dist"
#   BENCH_TIMEOUT=S       seconds before a benchmark counts as hung
#   BENCH_OUT=DIR         where results go (default bench/results)
#
# Each actor benchmark runs at every thread count before the next one
# starts, so that the runs a ratio compares are close in time.
#
# The network workloads come after the actor benchmarks (echo-rr,
# echo-stream, echo-idle against examples/echo, chat-fanout against
# examples/chat): for each, a fresh server on a port it picks (parsed from
# its "listening on ...:<port>" line), driven by bench/loadgen in its own
# process, then stopped with SIGTERM. A server that fails to start, exits
# non-zero (a sanitizer report, a leak) or does not stop fails its row.
# chat-fanout is skipped, with a note, while examples/chat is not built.
# The http workload drives examples/http with wrk (Debian package wrk) when
# it is installed, and is skipped, with a note and not as a failure, when
# it is not: requests/s and the p50/p99 latency wrk measured.
# Right after troupe's echo-rr and echo-stream, the same workload runs
# against bench/epoll-echo (one thread, plain epoll, no troupe: the floor
# of what a server costs), and troupe's figures are recorded as ratios to
# the floor's: rows <workload>-floor, echo-rr-vs-floor (requests/s),
# echo-rr-p99-vs-floor (p99 latency, lower is better) and
# echo-stream-vs-floor (MiB/s).
#
# The dist group comes last: two nodes over Erlang's distribution
# protocol, each program with its own epmd on a free port. dist-pingpong
# and dist-stream between two troupe processes, dist-pingpong-erl with an
# erl node as the echoing peer, and dist-pingpong-erlang and
# dist-stream-erlang, the same two workloads between two erl nodes
# (bench/dist-erl.escript; impl=erlang, one run at erl's own scheduler
# count whatever BENCH_THREADS says). Skipped, with a printed line, when
# erl or epmd is not installed.
#
# CSV: one row per run (the rep column says which round), plus the ratio
# rows; threads is the pass's count (the floor itself always runs one).
#
# Exits non-zero if any benchmark fails its check, crashes or hangs, after
# running the rest.
#
# shellcheck disable=SC2086  # $limit, $args and $targ are word lists

cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build/release}
SCALE=${BENCH_SCALE:-default}
BENCHES="control pingpong counting fjthroughput fjcreation threadring chameneos big skynet fanin idlemem timers ask"
NET_BENCHES="echo-rr echo-stream echo-idle chat-fanout http"
FLOOR_BENCHES="echo-rr echo-stream"
DIST_BENCHES="dist-pingpong dist-pingpong-erl dist-stream dist-pingpong-erlang dist-stream-erlang"
LOADGEN=$BUILD/bench/loadgen
FLOOR=$BUILD/bench/epoll-echo
THREADS=${BENCH_THREADS:-default}
REPS=${BENCH_REPS:-1}
ONLY=${BENCH_ONLY:-}

usage_error() {
    echo "run.sh: $*" >&2
    exit 2
}

case $SCALE in
default) suffix=""; timeout_s=${BENCH_TIMEOUT:-600} ;;
small)   suffix="-small"; timeout_s=${BENCH_TIMEOUT:-60} ;;
*)       usage_error "BENCH_SCALE must be empty, default or small" ;;
esac
[ "$THREADS" = default ] || for t in $THREADS; do
    case $t in
    *[!0-9]*) usage_error "BENCH_THREADS must be thread counts, like \"2 16\"" ;;
    esac
done
case $REPS in
''|*[!0-9]*|0) usage_error "BENCH_REPS must be a count of at least 1" ;;
esac
for w in $ONLY; do
    case " actors net dist $BENCHES $NET_BENCHES $DIST_BENCHES " in
    *" $w "*) ;;
    *) usage_error "BENCH_ONLY: no benchmark or group '$w'" ;;
    esac
done

# Sizes for BENCH_SCALE=small: a tenth of the defaults or less.
small_args() {
    case $1 in
    control)      echo "--n 1000000" ;;
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
    ask)          echo "--n 400000" ;;
    echo-rr)      echo "--secs 1 --conns 8" ;;
    echo-stream)  echo "--conns 4 --mbytes 4" ;;
    echo-idle)    echo "--conns 500 --secs 1" ;;
    chat-fanout)  echo "--clients 10 --n 100" ;;
    http)         echo "--conns 8 --secs 1" ;;
    dist-pingpong*) echo "--n 10000" ;;
    dist-stream*) echo "--senders 4 --n 20000" ;;
    esac
}

bench_args() {
    if [ "$SCALE" = small ]; then
        small_args "$1"
    elif [ "$1" = http ]; then
        echo "--conns 64 --secs 10"
    else
        case $1 in
        dist-pingpong*) echo "--n 100000" ;;
        dist-stream*)   echo "--senders 4 --n 250000" ;;
        esac
    fi
}

# The server a network workload runs against.
net_server() {
    case $1 in
    chat-*) echo "$BUILD/examples/chat" ;;
    http)   echo "$BUILD/examples/http" ;;
    *)      echo "$BUILD/examples/echo" ;;
    esac
}

# Whether benchmark $1 (of group $2: actors or net) is to run.
wanted() {
    [ -z "$ONLY" ] && return 0
    for w in $ONLY; do
        [ "$w" = "$1" ] || [ "$w" = "$2" ] && return 0
    done
    return 1
}

# Whether workload $1 also runs against the floor.
has_floor() {
    case " $FLOOR_BENCHES " in *" $1 "*) return 0 ;; esac
    return 1
}

# The worker threads of a pass with count $1, as the runtime will pick
# them: the servers get them as TROUPE_THREADS, the table shows them.
pass_threads() {
    t=$1
    [ "$t" = default ] && t=${TROUPE_THREADS:-0}
    [ "$t" -ge 1 ] 2>/dev/null || t=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 0)
    echo "$t"
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
# loadgen's own deadline comes a little before the hang limit, so that a
# stuck run says where it stuck.
lg_timeout=$((timeout_s > 20 ? timeout_s - 10 : timeout_s))

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

# Starts server $1 with $2 worker threads on a port of its choosing; sets
# server_pid and port once it accepts. Returns 1 (why: in $tmp/srv.err) if
# it does not come up.
start_server() {
    # Emptied here, not by the redirection below: that one happens in the
    # child, maybe after the first look for the port, which would then
    # find the previous server's.
    : > "$tmp/srv.out"
    TROUPE_THREADS=$2 "$1" 0 > "$tmp/srv.out" 2> "$tmp/srv.err" &
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

# Adds the CSV row of benchmark $1, run with args $2, status $3, result
# line $4, in the pass of $5 threads, round $6.
record() {
    if [ -n "$4" ]; then
        params=$(printf '%s\n' "$4" | sed -e 's/.* threads=[0-9]* //' -e 's/ secs=.*//')
        printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$date" "$SCALE" "$1" \
            "$(field impl "$4")" "$5" "$params" "$(field secs "$4")" \
            "$(field rate "$4")" "$(field unit "$4")" "$3" "$6" >> "$csv"
    else
        params=$(echo "$2" | sed 's/--\([a-z_-]*\) \([0-9]*\)/\1=\2/g')
        printf '%s,%s,%s,,%s,%s,,,,%s,%s\n' "$date" "$SCALE" "$1" "$5" "$params" \
            "$3" "$6" >> "$csv"
    fi
}

# Adds a ratio row: benchmark $1, troupe's figure $2 over the floor's $3
# (named $4 in params), pass $5, round $6.
record_ratio() {
    awk -v a="$2" -v b="$3" 'BEGIN { if (b + 0 > 0) printf "%.3f\n", a / b }' > "$tmp/ratio"
    [ -s "$tmp/ratio" ] || return 0
    printf '%s,%s,%s,troupe/epoll,%s,troupe_%s=%s floor_%s=%s,,%s,ratio,ok,%s\n' \
        "$date" "$SCALE" "$1" "$5" "$4" "$2" "$4" "$3" "$(cat "$tmp/ratio")" "$6" >> "$csv"
}

i=0
# Prints the progress line of a run: what runs, $1, and how.
announce() {
    i=$((i + 1))
    printf '[%d/%d] %s ... ' "$i" "$total" "$1" >&2
}

# Ends a progress line with status $1 and what the run said on stderr.
report() {
    [ "$1" = ok ] || failed=1
    echo "$1" >&2
    # The program's own stderr: why a check failed, or what crashed.
    [ -s "$tmp/err" ] && sed 's/^/    /' "$tmp/err" >&2
    # The server's: a sanitizer report, or why it did not start.
    [ -s "$tmp/srv.err" ] && sed 's/^/    server: /' "$tmp/srv.err" >&2
    : > "$tmp/err"
    : > "$tmp/srv.err"
}

# Actor benchmark $1 with $2 threads ("default": no --threads), round $3.
run_actor() {
    args=$(bench_args "$1")
    targ=""
    [ "$2" = default ] || targ="--threads $2"
    prog=$BUILD/bench/$1
    announce "$1${args:+ $args}${targ:+ $targ}${rounds:+ (round $3)}"
    line=""
    if [ ! -x "$prog" ]; then
        status=missing
    else
        $limit "$prog" $args $targ > "$tmp/out" 2> "$tmp/err"
        rc=$?
        line=$(grep '^bench=' "$tmp/out" | head -n 1)
        status=$(run_status "$rc" "$line")
    fi
    report "$status"
    ran_threads=$(field threads "$line")
    record "$1" "$args" "$status" "$line" "${ran_threads:-$(pass_threads "$2")}" "$3"
}

# Workload $1 with args $2 against server $3, labelled impl $4, whose
# worker threads are $5; sets status and line.
run_load() {
    line=""
    if [ ! -x "$LOADGEN" ] || [ ! -x "$3" ]; then
        status=missing
        return
    fi
    if ! start_server "$3" "$5"; then
        status="failed (the server did not start)"
        return
    fi
    $limit "$LOADGEN" "$1" $2 --port "$port" --server-pid "$server_pid" \
        --impl "$4" --threads "$5" --timeout "$lg_timeout" > "$tmp/out" 2> "$tmp/err"
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
}

# wrk's latency figure $1 ("812.00us", "1.25ms", "2.01s") in microseconds.
to_us() {
    printf '%s\n' "$1" | awk '/us$/ { printf "%d", $0 + 0; next }
        /ms$/ { printf "%d", ($0 + 0) * 1000; next }
        /s$/  { printf "%d", ($0 + 0) * 1000000; next }'
}

# The http workload with args $1 ("--conns C --secs S") against
# examples/http with $2 worker threads: wrk on one thread, its requests/s
# and latency percentiles as a result line; sets status and line.
run_wrk() {
    line=""
    conns=$(printf '%s\n' "$1" | sed -n 's/.*--conns \([0-9]*\).*/\1/p')
    secs=$(printf '%s\n' "$1" | sed -n 's/.*--secs \([0-9]*\).*/\1/p')
    if [ ! -x "$LOADGEN" ] || [ ! -x "$BUILD/examples/http" ]; then
        status=missing
        return
    fi
    if ! start_server "$BUILD/examples/http" "$2"; then
        status="failed (the server did not start)"
        return
    fi
    $limit wrk -t 1 -c "$conns" -d "${secs}s" --latency "http://127.0.0.1:$port/" \
        > "$tmp/wrk" 2> "$tmp/err"
    rc=$?
    stop_server
    [ "$rc" -eq 0 ] || cat "$tmp/wrk" >> "$tmp/err"
    rate=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$tmp/wrk" | cut -d. -f1)
    p50=$(to_us "$(awk '$1 == "50%" { print $2 }' "$tmp/wrk")")
    p99=$(to_us "$(awk '$1 == "99%" { print $2 }' "$tmp/wrk")")
    check=ok
    # Every response must be a 200 on a connection that stayed up.
    if [ "$rc" -ne 0 ] || [ -z "$rate" ] || grep -q -e 'Non-2xx' -e 'Socket errors' "$tmp/wrk"; then
        check=FAIL
        grep -e 'Non-2xx' -e 'Socket errors' "$tmp/wrk" >> "$tmp/err"
    fi
    line="bench=http impl=troupe threads=$2 conns=$conns p50_us=${p50:-0} p99_us=${p99:-0} secs=$secs rate=${rate:-0} unit=requests check=$check"
    status=$(run_status "$rc" "$line")
    if [ "$server_rc" -ne 0 ] && [ "$status" = ok ]; then
        status="server failed (exit $server_rc)"
    fi
}

# Network workload $1 in the pass of $2 threads, round $3: against
# troupe's server, then (echo-rr, echo-stream) against the floor.
run_net() {
    args=$(bench_args "$1")
    server=$(net_server "$1")
    nt=$(pass_threads "$2")
    announce "$1${args:+ $args} (server threads $nt)${rounds:+ (round $3)}"
    if [ "$1" = chat-fanout ] && [ ! -x "$server" ]; then
        echo "skipped ($server is not built)" >&2
        return
    fi
    if [ "$1" = http ]; then
        if ! command -v wrk >/dev/null 2>&1; then
            echo "skipped (wrk is not installed: apt-get install wrk)" >&2
            return
        fi
        run_wrk "$args" "$nt"
        report "$status"
        record "$1" "$args" "$status" "$line" "$nt" "$3"
        return
    fi
    run_load "$1" "$args" "$server" troupe "$nt"
    report "$status"
    record "$1" "$args" "$status" "$line" "$nt" "$3"
    has_floor "$1" || return 0
    troupe_status=$status
    troupe_line=$line

    announce "$1-floor${args:+ $args} (bench/epoll-echo, one thread)${rounds:+ (round $3)}"
    run_load "$1" "$args" "$FLOOR" epoll 1
    report "$status"
    record "$1-floor" "$args" "$status" "$line" "$nt" "$3"
    [ "$troupe_status" = ok ] && [ "$status" = ok ] || return 0
    record_ratio "$1-vs-floor" "$(field rate "$troupe_line")" "$(field rate "$line")" \
        rate "$nt" "$3"
    [ "$1" = echo-rr ] && record_ratio echo-rr-p99-vs-floor \
        "$(field p99_us "$troupe_line")" "$(field p99_us "$line")" p99_us "$nt" "$3"
    return 0
}

# Dist benchmark $1 in the pass of $2 threads, round $3: a troupe program
# (dist-pingpong-erl is dist-pingpong --erl 1) or, for *-erlang, the
# escript with the workload's sizes as its arguments.
run_dist() {
    args=$(bench_args "$1")
    targ=""
    [ "$2" = default ] || targ="--threads $2"
    announce "$1${args:+ $args}${targ:+ $targ}${rounds:+ (round $3)}"
    if ! command -v erl >/dev/null 2>&1 || ! command -v epmd >/dev/null 2>&1; then
        echo "skipped (erl/epmd not installed: apt-get install erlang-nox)" >&2
        return
    fi
    line=""
    case $1 in
    *-erlang)
        workload=$(echo "$1" | sed -e 's/^dist-//' -e 's/-erlang$//')
        sizes=$(echo "$args" | sed 's/--[a-z]* //g')
        $limit escript bench/dist-erl.escript "$workload" $sizes > "$tmp/out" 2> "$tmp/err"
        rc=$? ;;
    *)
        prog=$BUILD/bench/$1
        extra=""
        [ "$1" = dist-pingpong-erl ] && prog=$BUILD/bench/dist-pingpong && extra="--erl 1"
        if [ ! -x "$prog" ]; then
            report missing
            record "$1" "$args" missing "" "$(pass_threads "$2")" "$3"
            return
        fi
        $limit "$prog" $args $extra $targ > "$tmp/out" 2> "$tmp/err"
        rc=$? ;;
    esac
    line=$(grep '^bench=' "$tmp/out" | head -n 1)
    [ "$rc" -eq 0 ] || grep -v '^bench=' "$tmp/out" >> "$tmp/err"
    status=$(run_status "$rc" "$line")
    report "$status"
    ran_threads=$(field threads "$line")
    record "$1" "$args" "$status" "$line" "${ran_threads:-$(pass_threads "$2")}" "$3"
}

# How many runs the progress lines count to.
runs_per_pass=0
for name in $BENCHES; do
    wanted "$name" actors && runs_per_pass=$((runs_per_pass + 1))
done
for name in $NET_BENCHES; do
    wanted "$name" net || continue
    runs_per_pass=$((runs_per_pass + 1))
    has_floor "$name" && runs_per_pass=$((runs_per_pass + 1))
done
for name in $DIST_BENCHES; do
    wanted "$name" dist && runs_per_pass=$((runs_per_pass + 1))
done
total=$((runs_per_pass * $(echo $THREADS | wc -w) * REPS))
rounds=""
[ "$REPS" -gt 1 ] && rounds=$REPS

echo "date,scale,bench,impl,threads,params,secs,rate,unit,check,rep" > "$csv"
failed=0
# Runs group $1's benchmarks ($2) wanted, at each thread count, with
# runner $3, in round $4.
run_group() {
    for name in $2; do
        wanted "$name" "$1" || continue
        for t in $THREADS; do
            "$3" "$name" "$t" "$4"
        done
    done
}

rep=1
while [ "$rep" -le "$REPS" ]; do
    run_group actors "$BENCHES" run_actor "$rep"
    run_group net "$NET_BENCHES" run_net "$rep"
    run_group dist "$DIST_BENCHES" run_dist "$rep"
    rep=$((rep + 1))
done

echo
awk -F, -v reps="$REPS" -v bars="$tmp/bars.dat" -v lines="$tmp/lines.dat" \
    -v plot="$tmp/lines.plot" -f bench/summary.awk "$csv"
echo "results: $csv" >&2

# The chart: with one thread count, a bar per benchmark (rates span six
# orders of magnitude, and idlemem and echo-idle are bytes: log scale);
# with several, a line per benchmark of its rate over the thread counts,
# as a fraction of its own best, against the 0.8 of the targets.
chart() {
    command -v gnuplot >/dev/null 2>&1 || return 0
    rm -f "$png"
    if [ -s "$tmp/lines.plot" ]; then
        gnuplot <<EOF
set terminal png size 1200,700
set output '$png'
set title 'troupe: rate over worker threads, as a fraction of each benchmark''s best ($date, $SCALE sizes, median of $REPS)'
set logscale x 2
set xtics ($(echo $THREADS | sed 's/ /, /g'))
set xlabel 'worker threads'
set ylabel 'rate / best rate'
set yrange [0:1.05]
set offsets graph 0.03, graph 0.03
set grid
set key outside right
set arrow from graph 0, first 0.8 to graph 1, first 0.8 nohead lc rgb 'red'
set label 'target 0.8' at graph 0.01, first 0.83 tc rgb 'red'
plot $(cat "$tmp/lines.plot")
EOF
    elif [ -s "$tmp/bars.dat" ]; then
        gnuplot <<EOF
set terminal png size 1200,600
set output '$png'
set title 'troupe benchmarks, $date, $SCALE sizes, $(awk -F, 'NR == 2 { print $5 }' "$csv") threads, median of $REPS (log scale)'
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.8
set logscale y
set yrange [1:*]
set ylabel 'rate per second (idlemem, echo-idle: bytes per actor, per connection)'
set grid ytics
set xtics rotate by -30
plot '$tmp/bars.dat' using 2:xticlabels(1) notitle, \
     '' using 0:2:(sprintf('%.3g', \$2)) with labels offset 0,1 notitle
EOF
    fi
    [ -f "$png" ] && echo "chart: $png" >&2
}
chart

exit $failed
