# Shared by scripts/load-gateway and scripts/fleet-wasmcloud: the fake, wrk
# and the result table. Sourced, not run.

started=()

need() {
    command -v "$1" >/dev/null || { echo "$1 is missing: $2" >&2; exit 1; }
}

# Stops every process this script started (and waits for it).
stop_all() {
    local pid
    for pid in "${started[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${started[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    started=()
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# 24 random bytes as hex: a fresh gateway API key for the run.
random_key() {
    od -An -N24 -tx1 /dev/urandom | tr -d ' \n'
}

# Builds the gateway component (release) and prints its path.
build_gateway() {
    local root="$1"
    cargo build --release --target wasm32-wasip2 -p dataverse-gateway \
        --manifest-path "$root/Cargo.toml" >&2
    echo "$root/target/wasm32-wasip2/release/dataverse_gateway.wasm"
}

# Starts `host-test fake-server --http` for SECONDS; sets FAKE_PID,
# FAKE_LOG, FAKE_PORT and FAKE_CONNECTION_FILE (the connection string, in the
# fake's private folder).
start_fake() {
    local host_test="$1" log="$2" seconds="$3"
    "$host_test" fake-server --http --seconds "$seconds" >"$log" 2>&1 &
    FAKE_PID=$!
    FAKE_LOG="$log"
    local i
    for i in $(seq 100); do
        if grep -q '^try:' "$log" 2>/dev/null; then break; fi
        sleep 0.1
    done
    FAKE_PORT="$(sed -n 's|.*on http://127.0.0.1:\([0-9]*\) .*|\1|p' "$log" | head -1)"
    FAKE_CONNECTION_FILE="$(sed -n 's|.*"$(cat \([^)]*\))".*|\1|p' "$log" | head -1)"
    [[ -n "$FAKE_PORT" && -f "$FAKE_CONNECTION_FILE" ]] || {
        echo "the fake did not start:" >&2
        cat "$log" >&2
        exit 1
    }
}

# Stops the fake and sets FAKE_SERVED to its last line's JSON.
stop_fake() {
    kill -TERM "$FAKE_PID" 2>/dev/null || true
    wait "$FAKE_PID" 2>/dev/null || true
    FAKE_SERVED="$(sed -n 's/^served: //p' "$FAKE_LOG" | tail -1)"
}

# Waits until http://ADDR/healthz answers 200, at most SECONDS.
wait_healthy() {
    local addr="$1" seconds="$2" i
    for i in $(seq $((seconds * 10))); do
        if [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/healthz" 2>/dev/null)" == 200 ]]; then
            return 0
        fi
        sleep 0.1
    done
    echo "nothing healthy on $addr after $seconds s" >&2
    return 1
}

# wrk against URL for SECONDS with CONNECTIONS connections; the API key is
# set by a Lua script from the environment, so it is never on a command line.
run_wrk() {
    local url="$1" seconds="$2" connections="$3"
    local lua
    lua="$(mktemp --suffix=.lua)"
    cat >"$lua" <<'LUA'
wrk.headers["x-api-key"] = os.getenv("GATEWAY_API_KEY")
LUA
    wrk -t2 -c"$connections" -d"${seconds}s" --timeout 10s --latency -s "$lua" "$url"
    rm -f "$lua"
}

# One table row from a wrk report and the fake's count:
# | engine | requests | requests/s | p50 | p99 | errors | token requests |
table_row() {
    local engine="$1" report="$2" served="$3"
    local rps p50 p99 total non2xx socket tokens
    rps="$(awk '/^Requests\/sec:/ {print $2}' "$report")"
    p50="$(awk '$1 == "50%" {print $2}' "$report")"
    p99="$(awk '$1 == "99%" {print $2}' "$report")"
    total="$(awk '/requests in/ {print $1}' "$report")"
    non2xx="$(awk -F': ' '/Non-2xx/ {print $2}' "$report")"
    socket="$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$report")"
    tokens="$(sed -n 's/.*"token_requests":\([0-9]*\).*/\1/p' <<<"$served")"
    echo "| $engine | ${total:-0} | ${rps:-0} | ${p50:-?} | ${p99:-?} | $(( ${non2xx:-0} + ${socket:-0} )) | ${tokens:-?} |"
}

# Prints the rows as a table and writes it to FILE under ROOT.
print_table() {
    local file="$1" root="$2"
    shift 2
    mkdir -p "$(dirname "$root/$file")"
    {
        echo "| engine | requests | requests/s | p50 | p99 | errors | token requests |"
        echo "| --- | --- | --- | --- | --- | --- | --- |"
        printf '%s\n' "$@"
    } | tee "$root/$file"
}
