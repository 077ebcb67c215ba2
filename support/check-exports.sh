#!/bin/sh
# support/check-exports.sh LIB [INCLUDE_DIR] — the shared library exports
# exactly the public interface.
#
# Fails (listing the names) if LIB exports a name that is not tr_ followed
# by a non-underscore (an internal tr__* or a stray symbol leaked past
# -fvisibility=hidden), if a function declared in INCLUDE_DIR (default
# include/) is not exported (its declaration lacks TR_API, or it has no
# definition), if something is exported that no header declares, or if a
# header that declares functions has no extern "C" guard.
#
# A declaration is a line of a header that starts in column 0, is not a
# preprocessor line, typedef or static function, and names tr_xxx( — the
# style of every header in include/troupe (a name on a line of its own
# after its return type is found too).
set -eu
lib=$1
inc=${2:-include}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

nm -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | sort -u >"$tmp/exported"
if [ ! -s "$tmp/exported" ]; then
    echo "check-exports: $lib exports nothing" >&2
    exit 1
fi

if grep -v '^tr_[^_]' "$tmp/exported" >"$tmp/bad"; then
    echo "check-exports: $lib exports names outside tr_*:" >&2
    sed 's/^/  /' "$tmp/bad" >&2
    fail=1
fi

: >"$tmp/all"
for h in $(find "$inc" -name '*.h' | sort); do
    grep -E '^[A-Za-z_]' "$h" | grep -Ev '^(typedef|static)' |
        grep -oE '\btr_[a-z0-9_]*[[:space:]]*\(' | sed 's/[[:space:]]*($//' >"$tmp/one" || true
    if [ -s "$tmp/one" ] && ! grep -q 'extern "C"' "$h"; then
        echo "check-exports: $h declares functions without an extern \"C\" guard" >&2
        fail=1
    fi
    cat "$tmp/one" >>"$tmp/all"
done
sort -u "$tmp/all" >"$tmp/declared"

if [ ! -s "$tmp/declared" ]; then
    echo "check-exports: no function declarations found under $inc" >&2
    exit 1
fi

comm -23 "$tmp/declared" "$tmp/exported" >"$tmp/missing"
if [ -s "$tmp/missing" ]; then
    echo "check-exports: declared in $inc but not exported by $lib (TR_API missing?):" >&2
    sed 's/^/  /' "$tmp/missing" >&2
    fail=1
fi
comm -13 "$tmp/declared" "$tmp/exported" >"$tmp/extra"
if [ -s "$tmp/extra" ]; then
    echo "check-exports: exported by $lib but declared in no header of $inc:" >&2
    sed 's/^/  /' "$tmp/extra" >&2
    fail=1
fi

[ $fail -eq 0 ] || exit 1
echo "check-exports: $lib exports the $(wc -l <"$tmp/declared") functions of $inc, nothing else"
