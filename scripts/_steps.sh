# Sourced by scripts/install, scripts/compat: run a set-up step quietly.
#
#   step "what it does" command args...
#
# prints "what it does ... ok (12 s)" on one line, with a dot every 5 s while
# the command runs; the command's own output goes to $STEP_LOG. On failure it
# prints the log's last lines and the log's name, and exits.

STEP_LOG="${STEP_LOG:-/dev/null}"

step() {
    local what="$1"
    shift
    local start=$SECONDS
    printf '%s ' "$what"
    {
        echo "=== $what"
        echo "+ $*"
    } >>"$STEP_LOG"
    "$@" >>"$STEP_LOG" 2>&1 &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        sleep 1
        if (((SECONDS - start) % 5 == 0)); then printf '.'; fi
    done
    if wait "$pid"; then
        printf ' ok (%d s)\n' "$((SECONDS - start))"
    else
        local rc=$?
        printf ' FAILED (exit %d)\n' "$rc"
        echo "--- last lines of $STEP_LOG:" >&2
        tail -n 25 "$STEP_LOG" >&2
        echo "--- the whole log: $STEP_LOG" >&2
        exit "$rc"
    fi
}
