#!/bin/sh
# check-layers.sh — the rule of actors/context.h: no file outside actors/
# reads a context's fields; other modules ask through its functions.
# Exits 1 and names the lines that break it.
cd "$(dirname "$0")/.." || exit 2
bad=$(grep -rnE '\bcx(->|\.)(actor|worker|rt|self|stopping|turn_end2?|blocked_by|asked|exit_reason|exit_text)\b' \
    --include='*.c' --include='*.h' mailbox sched reactor net dist base)
if [ -n "$bad" ]; then
    echo "check-layers: a context's fields read outside actors/ (use actors/context.h):"
    echo "$bad"
    exit 1
fi
echo "check-layers: no context field is read outside actors/"
