# summary.awk — the table of a run.sh CSV (awk -F, -f summary.awk file.csv).
#
# Columns: date,scale,bench,impl,threads,params,secs,rate,unit,check,rep.
# Each benchmark's figure at a thread count is its median run among those
# that passed (of an even count, the lower of the middle two: a run that
# happened, whose seconds and parameters go with its rate).
#
# One thread count: a row per benchmark (rate, unit, seconds, check,
# parameters), as run.sh always printed. Several: a column per count, then
# the rate at the largest count over the rate at the smallest and over
# the benchmark's best (the targets want both >= 0.8). With reps > 1, a
# spread column: max / min of a benchmark's runs, the worst over its
# thread counts (target <= 1.3). '*' marks a figure that misses a target;
# rows of anything but troupe (reference) have none.
#
# -v reps=R; chart data for run.sh: -v bars=FILE (one count: "name rate"
# per benchmark), -v lines=FILE and -v plot=FILE (several: a data block
# per benchmark, "threads rate/best", and the gnuplot plot clauses).

function lower_is_better(name) {
    return unit[name] ~ /^bytes/ || name ~ /p99/
}

# Rows of something other than troupe — the control (impl none,
# bench/control.c), the epoll floor, Erlang's own nodes — carry no
# target: the control's spread is the machine's own, to read the others'
# against, and the rest are what troupe is measured beside.
function reference(name) {
    return impl[name] !~ /^troupe/
}

# A figure and '*' if it misses its target (never on a reference row).
function marked(fmt, x, miss, name) {
    return sprintf(fmt "%s", x, (miss && !reference(name) ? "*" : ""))
}

# Rows that compare with the floor, or are the floor: not about threads.
function not_scaling(name) {
    return unit[name] == "ratio" || name ~ /-floor$/ || lower_is_better(name)
}

# Sorts the passed runs of key k by rate; sets med[k] (the index of the
# median run) and spread[k] (max / min, 0 if unknown).
function median(k,    n, a, i, j, x) {
    n = 0
    for (i = 1; i <= runs[k]; i++)
        if (check[k, i] == "ok")
            a[++n] = i
    for (i = 2; i <= n; i++)
        for (j = i; j > 1 && rate[k, a[j - 1]] > rate[k, a[j]]; j--) {
            x = a[j]; a[j] = a[j - 1]; a[j - 1] = x
        }
    med[k] = n > 0 ? a[int((n + 1) / 2)] : 0
    spread[k] = n > 1 && rate[k, a[1]] > 0 ? rate[k, a[n]] / rate[k, a[1]] : 0
    return n
}

# A rate in three or four digits and a suffix.
function human(x, u,    s, v) {
    if (u == "ratio")
        return sprintf("%.2f", x)
    s = ""; v = x
    if (x >= 1e9)      { v = x / 1e9; s = "G" }
    else if (x >= 1e6) { v = x / 1e6; s = "M" }
    else if (x >= 1e4) { v = x / 1e3; s = "k" }
    return sprintf(v >= 100 || s == "" ? "%.0f%s" : v >= 10 ? "%.1f%s" : "%.2f%s", v, s)
}

function status_of(k,    i) {
    for (i = 1; i <= runs[k]; i++)
        if (check[k, i] != "ok")
            return check[k, i]
    return "ok"
}

NR == 1 { next }
{
    name = $3; t = $5
    if (!(name in seen)) { seen[name] = 1; names[++nnames] = name }
    if (!(t in tseen)) { tseen[t] = 1; threads[++nthreads] = t }
    k = name SUBSEP t
    i = ++runs[k]
    rate[k, i] = $8 + 0; shown[k, i] = $8; secs[k, i] = $7; params[k, i] = $6; check[k, i] = $10
    if ($9 != "") unit[name] = $9
    impl[name] = $4
}

function detail_table(    b, k, n, m, r, sec, sp) {
    printf "%-20s %14s  %-12s %9s  %-6s %s%s\n", "benchmark", "rate", "unit", "seconds",
        "check", (reps > 1 ? "spread  " : ""), "parameters"
    for (b = 1; b <= nnames; b++) {
        k = names[b] SUBSEP threads[1]
        n = median(k)
        m = 1; r = ""; sec = ""; sp = ""
        if (n > 0) {
            m = med[k]; r = shown[k, m]; sec = secs[k, m]
        }
        if (reps > 1)
            sp = sprintf("%-7s ", spread[k] > 0 ? marked("%.2f", spread[k], spread[k] > 1.3,
                                                         names[b]) : "-")
        printf "%-20s %14s  %-12s %9s  %-6s %s%s\n", names[b], r, unit[names[b]], sec,
            status_of(k), sp, params[k, m]
        if (bars != "" && n > 0 && unit[names[b]] != "ratio")
            print names[b], r > bars
    }
}

function matrix_table(    b, c, k, n, lo, hi, lo_k, hi_k, best, r, cell, worst, name, nb, col) {
    lo = hi = threads[1]
    for (c = 2; c <= nthreads; c++) {
        if (threads[c] + 0 < lo + 0) lo = threads[c]
        if (threads[c] + 0 > hi + 0) hi = threads[c]
    }
    printf "%-20s %-12s", "benchmark", "unit"
    for (c = 1; c <= nthreads; c++)
        printf " %8s", "T=" threads[c]
    printf " %8s %8s%s\n", hi "/" lo, hi "/best", (reps > 1 ? "   spread" : "")
    nb = 0
    for (b = 1; b <= nnames; b++) {
        name = names[b]
        printf "%-20s %-12s", name, unit[name]
        best = 0; worst = 0
        for (c = 1; c <= nthreads; c++) {
            k = name SUBSEP threads[c]
            n = runs[k] > 0 ? median(k) : 0
            cell = runs[k] == 0 ? "-" : n == 0 ? "FAIL" : human(rate[k, med[k]], unit[name])
            if (n > 0 && rate[k, med[k]] > best) best = rate[k, med[k]]
            if (spread[k] > worst) worst = spread[k]
            printf " %8s", cell
        }
        lo_k = name SUBSEP lo; hi_k = name SUBSEP hi
        if (not_scaling(name) || !med[lo_k] || !med[hi_k] || best <= 0) {
            printf " %8s %8s", "-", "-"
        } else {
            r = rate[hi_k, med[hi_k]] / rate[lo_k, med[lo_k]]
            printf " %8s", marked("%.2f", r, r < 0.8, name)
            r = rate[hi_k, med[hi_k]] / best
            printf " %8s", marked("%.2f", r, r < 0.8, name)
        }
        if (reps > 1)
            printf " %8s", (worst > 0 ? marked("%.2f", worst, worst > 1.3, name) : "-")
        printf "\n"
        if (lines == "" || not_scaling(name) || best <= 0)
            continue
        # The chart: this benchmark's block of (threads, rate / best).
        col = 0
        for (c = 1; c <= nthreads; c++) {
            k = name SUBSEP threads[c]
            if (med[k]) {
                print threads[c], rate[k, med[k]] / best > lines
                col++
            }
        }
        if (col == 0)
            continue
        print "\n" > lines
        printf "%s'%s' index %d using 1:2 with linespoints lw 2 title '%s'", nb ? ", " : "",
            lines, nb, name > plot
        nb++
    }
    printf "%s/%s: the rate at %s threads over the rate at %s; %s/best: over the best at any\n",
        hi, lo, hi, lo, hi
    printf "count ('*': below 0.8, the target). None for the floor, the ratios to it,\n"
    printf "figures where lower is better, and rows that are not troupe's.\n"
}

# What the control's row means, when it ran, and the range of its
# handoff_ns (a line's trip between two CPUs) over its runs.
function control_note(    b, c, j, x, lo, hi) {
    for (b = 1; b <= nnames; b++)
        if (impl[names[b]] == "none") {
            printf "%s: plain threads, no troupe code (bench/control.c): no target; its spread\n", names[b]
            printf "is the machine's own at runs of that length.\n"
            lo = hi = ""
            for (c = 1; c <= nthreads; c++)
                for (j = 1; j <= runs[names[b], threads[c]]; j++) {
                    if (!match(params[names[b], threads[c], j], /handoff_ns=[1-9][0-9]*/))
                        continue # absent, or 0 (one CPU)
                    x = substr(params[names[b], threads[c], j], RSTART, RLENGTH)
                    sub(/^handoff_ns=/, "", x)
                    x += 0
                    if (lo == "" || x < lo) lo = x
                    if (hi == "" || x > hi) hi = x
                }
            if (lo != "")
                printf "A cache line between two CPUs took %s ns as the control ran (handoff_ns);\n" \
                    "on a shared VM that cost moves by the minute, and benchmarks whose workers\n" \
                    "talk are slower while it is high (bench/control.c).\n",
                    (lo == hi ? lo : lo "-" hi)
            return
        }
}

END {
    if (nthreads <= 1)
        detail_table()
    else
        matrix_table()
    control_note()
    if (reps > 1)
        printf "rates: the median of %d rounds; spread: max / min of a benchmark's rounds%s ('*': above 1.3, the target)\n",
            reps, (nthreads > 1 ? ", the worst over its thread counts" : "")
}
