#!/bin/sh
# sim-check.sh — what `make sim-check` runs (docs/simulation.md):
#  1. the runtime simulates at all (a run prints "trace hash=");
#  2. troupe-sim finds examples/sim-race's lost update within SIM_SEEDS
#     seeds, uniform and PCT, and the command it prints fails again five
#     times out of five with the same trace hash; PCT must need fewer
#     seeds than uniform;
#  3. determinism: TROUPE_SIM_CHECK=1 (each seed run twice, the trace
#     hashes compared) over a few seeds of hello and pingpong;
#  4. the chat's protocol scenarios under simulation, 1,000 seeds each;
#  5. the same trace hashes from an SAN=address build, when one is built.
# BUILD is the build folder (build/release). Exits 1 if a step failed.
cd "$(dirname "$0")/.." || exit 2
B=${BUILD:-build/release}
SEEDS=${SIM_SEEDS:-10000}
SIM=$B/tools/troupe-sim
failed=0

say() { echo "sim-check: $*"; }

# ---- 1. simulated at all ----
if ! TROUPE_SIM_SEED=1 "$B/examples/hello" 2>&1 >/dev/null | grep -q '^trace hash='; then
    say "FAILED: TROUPE_SIM_SEED=1 $B/examples/hello printed no 'trace hash=' line:"
    say "the runtime does not run programs in simulation (is the simulator's core built in?)"
    exit 1
fi

# ---- 2. the race, found and replayed ----
# race LABEL [troupe-sim options]: sets $found to the seeds it took.
race() {
    label=$1
    shift
    found=
    out=$("$SIM" --seeds "1-$SEEDS" "$@" "$B/examples/sim-race" 2>&1)
    rc=$?
    if [ $rc -ne 1 ]; then
        say "FAILED: sim-race, $label: the race was NOT found in $SEEDS seeds (troupe-sim exit $rc):"
        printf '%s\n' "$out" | tail -n 5
        failed=1
        return
    fi
    found=$(printf '%s\n' "$out" | sed -n 's/^troupe-sim: seeds to find it: \([0-9]*\).*/\1/p')
    cmd=$(printf '%s\n' "$out" | sed -n '/^troupe-sim: reproduce with:$/{n;s/^    //p;}')
    say "sim-race, $label: found after $found seeds; replaying: $cmd"
    first=
    for i in 1 2 3 4 5; do
        replay=$( (eval "$cmd") 2>&1)
        rc=$?
        hash=$(printf '%s\n' "$replay" | sed -n 's/^trace hash=//p')
        first=${first:-$hash}
        if [ $rc -ne 1 ] || [ -z "$hash" ] || [ "$hash" != "$first" ]; then
            say "FAILED: sim-race, $label: replay $i of 5 exited $rc with trace hash '$hash'" \
                "(the first: '$first'): the seed does not reproduce"
            failed=1
            return
        fi
    done
    say "sim-race, $label: the replay failed 5 times out of 5, trace hash $first each time"
}

race uniform
uniform=$found
race pct --pct
pct=$found
if [ -n "$uniform" ] && [ -n "$pct" ]; then
    say "seeds to find sim-race's lost update: uniform $uniform, pct $pct"
    if [ "$pct" -ge "$uniform" ]; then
        say "FAILED: PCT needed no fewer seeds than uniform"
        failed=1
    fi
fi

# ---- 3. determinism: the same seed twice, the same trace hashes ----
for prog in "hello" "pingpong 2000"; do
    # shellcheck disable=SC2086 # the program's arguments are split on purpose
    out=$(TROUPE_SIM_CHECK=1 "$SIM" --seeds 1-20 $B/examples/$prog 2>&1)
    rc=$?
    if [ $rc -ne 0 ] || printf '%s\n' "$out" | grep -q 'printed no "trace hash="'; then
        say "FAILED: TROUPE_SIM_CHECK=1 over seeds 1-20 of $prog:"
        printf '%s\n' "$out" | tail -n 25
        failed=1
    else
        say "determinism, $prog: $(printf '%s\n' "$out" | sed -n 's/^troupe-sim: //p' | head -n 1)" \
            "(each seed run twice, the same hashes)"
    fi
done

# ---- 4. the chat's protocol scenarios, 1,000 seeds each ----
jobs=$(nproc 2>/dev/null || echo 2)
t0=$(date +%s)
if out=$(SIM_CHAT_SEEDS=1-1000 SIM_CHAT_JOBS=$jobs "$B/tests/run" sim_chat 2>&1); then
    say "chat scenarios under simulation, seeds 1-1000 each, $jobs processes: passed in $(( $(date +%s) - t0 )) s"
    printf '%s\n' "$out" | grep -E 'runs|seeds' | tail -n 3
else
    say "FAILED: the chat scenarios under simulation (SIM_CHAT_SEEDS=1-1000 $B/tests/run sim_chat):"
    printf '%s\n' "$out" | tail -n 30
    failed=1
fi

# ---- 5. the same hash from another build (SAN=address), when it is built ----
A=build/address
if [ "$B" != "$A" ] && [ -x "$A/examples/sim-race" ]; then
    same=1 # this step's own verdict: an earlier step's failure must not hide it
    for seed in 1 2 3 22 397; do
        h1=$(TROUPE_SIM_SEED=$seed "$B/examples/sim-race" 2>&1 >/dev/null | sed -n 's/^trace hash=//p')
        h2=$(TROUPE_SIM_SEED=$seed "$A/examples/sim-race" 2>&1 >/dev/null | sed -n 's/^trace hash=//p')
        if [ -z "$h1" ] || [ "$h1" != "$h2" ]; then
            say "FAILED: sim-race seed $seed: trace hash '$h1' in $B, '$h2' in $A"
            failed=1
            same=0
        fi
    done
    [ $same -eq 1 ] && say "sim-race seeds 1 2 3 22 397: the same trace hashes in $B and $A"
fi

if [ $failed -ne 0 ]; then
    say "FAILED"
    exit 1
fi
say "all passed"
