#!/bin/sh
# Checks for the Debian packages troupe builds against and installs the
# missing ones when run as root; otherwise prints the command and fails.
# g++: `make test` builds a C++ program against the headers (tests/cxx).
# erlang-dev: ei, for the external term format (dist/); nettle-dev: MD5 for
# the distribution handshake; erlang-nox: the erl and epmd the dist tests
# run against. wrk (optional): `make bench` drives examples/http with it
# when it is installed, and says it skipped that workload when it is not.
PKGS="libck-dev libcunit1-dev libmsgpack-dev libhttp-parser-dev g++ erlang-dev erlang-nox nettle-dev"
OPTIONAL="wrk"
for p in $OPTIONAL; do
    command -v "$p" >/dev/null 2>&1 ||
        echo "deps: optional $p is not installed (apt-get install $p)" >&2
done
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    echo "deps: installing$missing" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$missing
    exit $?
fi
echo "deps: missing$missing; install them with:" >&2
echo "    sudo apt-get install -y$missing" >&2
exit 1
