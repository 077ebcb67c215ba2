#!/bin/sh
# run.sh — runs the actor benchmark suite (../shared/bench-spec.md) and
# collects the result lines into a table, bench/results/<date>.csv and, if
# gnuplot is installed, a bar chart bench/results/<date>.png.
#
#   BUILD=build/release   where the programs are (bench/ below it)
#   BENCH_SCALE=small     much smaller sizes: the suite in seconds, a smoke
#                         test (results go to <date>-small.*, not to the
#                         day's real figures)
#   BENCH_THREADS=N       passed as --threads N (default: online CPUs)
#   BENCH_TIMEOUT=S       seconds before a benchmark counts as hung
#   BENCH_OUT=DIR         where results go (default bench/results)
#
# Exits non-zero if any benchmark fails its check, crashes or hangs, after
# running the rest.
#
# shellcheck disable=SC2086  # $limit, $args and $threads_arg are word lists

cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build/release}
SCALE=${BENCH_SCALE:-default}
BENCHES="pingpong counting fjthroughput fjcreation threadring chameneos big skynet fanin idlemem timers"

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
    esac
}

date=$(date +%Y-%m-%d)
outdir=${BENCH_OUT:-bench/results}
csv=$outdir/$date$suffix.csv
png=$outdir/$date$suffix.png
mkdir -p "$outdir" || exit 2
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM

if command -v timeout >/dev/null 2>&1; then
    limit="timeout $timeout_s"
else
    limit=""
fi
threads_arg=""
[ -n "${BENCH_THREADS:-}" ] && threads_arg="--threads $BENCH_THREADS"

# The value of key=... in a result line.
field() {
    printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

echo "date,scale,bench,impl,threads,params,secs,rate,unit,check" > "$csv"
failed=0
total=$(printf '%s\n' $BENCHES | wc -l)
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
        check=$(field check "$line")
        if [ "$rc" -eq 0 ] && [ "$check" = ok ]; then
            status=ok
        elif [ "$rc" -eq 124 ] && [ -n "$limit" ]; then
            status="hung (>${timeout_s}s)"
        elif [ "$rc" -gt 128 ]; then
            status="crashed (signal $((rc - 128)))"
        elif [ -n "$line" ]; then
            status=FAIL
        else
            status="failed (exit $rc)"
        fi
    fi
    [ "$status" = ok ] || failed=1
    echo "$status" >&2
    # The program's own stderr: why a check failed, or what crashed.
    [ -s "$tmp/err" ] && sed 's/^/    /' "$tmp/err" >&2

    if [ -n "$line" ]; then
        params=$(printf '%s\n' "$line" | sed -e 's/.* threads=[0-9]* //' -e 's/ secs=.*//')
        printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$date" "$SCALE" "$name" \
            "$(field impl "$line")" "$(field threads "$line")" "$params" \
            "$(field secs "$line")" "$(field rate "$line")" "$(field unit "$line")" \
            "$status" >> "$csv"
    else
        params=$(echo "$args" | sed 's/--\([a-z]*\) \([0-9]*\)/\1=\2/g')
        printf '%s,%s,%s,troupe,,%s,,,,%s\n' "$date" "$SCALE" "$name" "$params" \
            "$status" >> "$csv"
    fi
done

echo
printf '%-14s %14s  %-12s %9s  %s\n' benchmark rate unit seconds check
tail -n +2 "$csv" | while IFS=, read -r _d _s name _impl _t _p secs rate unit check; do
    printf '%-14s %14s  %-12s %9s  %s\n' "$name" "$rate" "$unit" "$secs" "$check"
done
echo "results: $csv" >&2

if command -v gnuplot >/dev/null 2>&1; then
    # One bar per benchmark that passed; rates span six orders of
    # magnitude (and idlemem is bytes), hence the log scale.
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
set ylabel 'rate per second (idlemem: bytes per actor)'
set grid ytics
plot '$tmp/plot.dat' using 2:xticlabels(1) notitle, \
     '' using 0:2:(sprintf('%.3g', \$2)) with labels offset 0,1 notitle
EOF
        [ -f "$png" ] && echo "chart: $png" >&2
    fi
fi

exit $failed
