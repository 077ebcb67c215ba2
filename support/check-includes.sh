#!/bin/sh
# check-includes.sh — the library's modules form a stack, and a file
# includes only from its own module and those below it:
#
#   base < sys < mailbox < actors < sched < reactor < net < dist < observe
#
# A file's module is its folder; an include "../X/..." names module X. A
# lower module that needs something from a higher one declares it in its
# own header and the higher one defines it ("provided by sched/"), so the
# include graph has no back edges (README, "How it works").
# Exits 1 and prints every include that goes up.
cd "$(dirname "$0")/.." || exit 2
ORDER="base sys mailbox actors sched reactor net dist observe"

rank() {
    i=0
    for m in $ORDER; do
        [ "$m" = "$1" ] && { echo $i; return; }
        i=$((i + 1))
    done
    echo -1
}

bad=0
for mod in $ORDER; do
    [ -d "$mod" ] || continue
    mine=$(rank "$mod")
    # Every include of another module, as FILE:LINE:TEXT.
    up=$(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"\.\./' "$mod"/*.c "$mod"/*.h 2>/dev/null |
        while IFS= read -r line; do
            target=$(printf '%s\n' "$line" | sed -E 's|^[^:]*:[0-9]+:[^"]*"\.\./([^/"]+)/.*|\1|')
            theirs=$(rank "$target")
            if [ "$theirs" -lt 0 ]; then
                echo "  $line   (unknown module $target)"
            elif [ "$theirs" -gt "$mine" ]; then
                echo "  $line   ($mod/ may not include $target/)"
            fi
        done)
    if [ -n "$up" ]; then
        [ $bad -eq 0 ] && echo "check-includes: includes that go up the order $ORDER:"
        echo "$up"
        bad=1
    fi
done
# A module folder missing from ORDER would escape the check.
for d in */; do
    d=${d%/}
    case " $ORDER include tests bench examples docs fuzz support tools build " in
    *" $d "*) ;;
    *) if find "$d" -maxdepth 1 \( -name '*.c' -o -name '*.h' \) | grep -q .; then
           echo "check-includes: folder $d/ holds sources but is not in ORDER"
           bad=1
       fi ;;
    esac
done
[ $bad -eq 0 ] && echo "check-includes: no include goes up the order $ORDER"
exit $bad
