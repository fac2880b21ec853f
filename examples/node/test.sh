#!/usr/bin/env bash
# Runs the Node.js example (main.mjs) against the fake Entra ID + Dataverse
# served over loopback TLS by `host-test fake-server`, the way a user would
# test against a local server: its CA in NODE_EXTRA_CA_CERTS, and the two real
# host names sent to 127.0.0.1:PORT by connect-to.cjs (see there).
#
#   examples/node/test.sh
#
# Needs `scripts/install-node-deps` first. Environment:
#   HOST_TEST            the host-test binary (default: `cargo run -q -p host-test --`)
#   DATAVERSE_COMPONENT  the component to transpile (default: the repo's build in target/wasm)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$here"

if [[ ! -d node_modules ]]; then
  echo "examples/node/node_modules is missing: run scripts/install-node-deps" >&2
  exit 1
fi

now_ms() { date +%s%3N; }

out=$(mktemp -d)
fake_pid=
ca=
cleanup() {
  if [[ -n $fake_pid ]]; then kill "$fake_pid" 2>/dev/null || true; fi
  if [[ -n $ca ]]; then rm -f "$ca"; fi
  rm -rf "$out"
}
trap cleanup EXIT

# The fake prints its port, CA file and a file with the demo connection string,
# then serves for 120 s (and removes both files when it stops).
if [[ -n ${HOST_TEST:-} ]]; then
  "$HOST_TEST" fake-server --seconds 120 >"$out/fake" 2>&1 &
else
  (cd "$root" && exec cargo run -q -p host-test -- fake-server --seconds 120) >"$out/fake" 2>&1 &
fi
fake_pid=$!
# `cargo run` may compile first: wait for its "try:" line up to 15 minutes, not forever.
deadline=$((SECONDS + 900))
until grep -q '^try:' "$out/fake"; do
  if ! kill -0 "$fake_pid" 2>/dev/null || ((SECONDS > deadline)); then
    echo "the fake server did not start:" >&2
    cat "$out/fake" >&2
    exit 1
  fi
  sleep 0.1
done
port=$(sed -n 's|^fake .* on https://127\.0\.0\.1:\([0-9]*\) .*|\1|p' "$out/fake")
ca=$(sed -n 's|.* --cacert \([^ ]*\) .*|\1|p' "$out/fake")
connection_file=$(sed -n 's|^try: .*--connection @\([^ ]*\) .*|\1|p' "$out/fake")
connection=$(cat "$connection_file" 2>/dev/null || true)
if [[ -z $port || -z $ca || -z $connection ]]; then
  echo "cannot read the port, CA or connection string from the fake's output:" >&2
  cat "$out/fake" >&2
  exit 1
fi

start=$(now_ms)
timeout 300 node transpile.mjs ${DATAVERSE_COMPONENT:+"$DATAVERSE_COMPONENT"} >/dev/null
transpile_ms=$(($(now_ms) - start))

export NODE_EXTRA_CA_CERTS=$ca
export NODE_OPTIONS="--require $here/connect-to.cjs"
export DATAVERSE_CONNECT_TO="contoso.crm.dynamics.com:443:127.0.0.1:$port,login.microsoftonline.com:443:127.0.0.1:$port"

start=$(now_ms)
DATAVERSE_CONNECTION=$connection timeout 60 node main.mjs >"$out/stdout" 2>"$out/stderr" || {
  echo "main.mjs failed (exit $?):" >&2
  cat "$out/stdout" "$out/stderr" >&2
  exit 1
}
run_ms=$(($(now_ms) - start))

# The demo app's Application User and the first three seeded accounts
# (host-test/fake/src/lib.rs DEMO_*_ID, host-test/fake/src/table.rs accounts()).
expected='UserId:           0b6f3d2a-7c1e-4a59-8e24-93d1f05c6b7a
BusinessUnitId:   c4b3a291-8e7d-4c6f-95a4-3b2c1d0e9f8a
OrganizationId:   5d9e8c7b-2a41-4f3e-b6d0-1c2e3f4a5b6c
account: Contoso Ltd
account: Fabrikam Inc
account: Adventure Works'
if ! diff <(echo "$expected") "$out/stdout" >&2; then
  echo "main.mjs printed something else (diff above: expected < > printed)" >&2
  exit 1
fi

# Request bodies around every write buffer (the 4 KiB one used to hang).
DATAVERSE_CONNECTION=$connection timeout 60 node payloads.mjs >"$out/payloads" 2>&1 || {
  echo "payloads.mjs failed (exit $?):" >&2
  cat "$out/payloads" >&2
  exit 1
}
cat "$out/payloads"

# A wrong secret: exit 3, Entra's AADSTS code, and the secret nowhere in the output.
wrong_secret='Wr0ng~Secret_Value-NotReal0000000000000000'
status=0
DATAVERSE_CONNECTION="$connection;ClientSecret=$wrong_secret" timeout 60 node main.mjs >"$out/stdout" 2>"$out/stderr" || status=$?
if [[ $status -ne 3 ]] || ! grep -q 'AADSTS7000215' "$out/stderr" || grep -qF "$wrong_secret" "$out/stdout" "$out/stderr"; then
  echo "a wrong secret should fail with exit 3 and AADSTS7000215, without echoing the secret; got exit $status:" >&2
  cat "$out/stdout" "$out/stderr" >&2
  exit 1
fi

echo "node example ok: transpile ${transpile_ms} ms, run (WhoAmI + query) ${run_ms} ms"
