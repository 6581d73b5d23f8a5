#!/usr/bin/env bash
# Runs the citadel-callout demo on loopback: a nats-server with TLS client
# verification, the auth callout and JetStream, the citadel-callout service,
# and a few building workloads that connect with their X.509-SVIDs. Some of
# their actions are allowed and some denied. At the end the script prints the
# decisions recorded on the audit stream.
#
#   scripts/demo.sh            (after `make`; `make demo` does both)
#
# Everything lives in ./demo-run/ (recreated on each run, ignored by git):
# the PKI, the keys, both configs, the JetStream store and the logs. Both
# servers listen on 127.0.0.1 only, nats-server on a port it picks itself.
# Every process the script starts is stopped when it exits, also on failure.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CITADEL_BIN:-$ROOT/build/citadel-callout}
TOOLS=${CITADEL_TOOLS:-$ROOT/build/tools}
RUN=${DEMO_RUN_DIR:-$ROOT/demo-run}
POLICY_DIR=$ROOT/policies
STREAM=CITADEL_AUDIT
WAIT_SECONDS=15

# Processes to stop on exit, with a name and the signal that stops them.
PIDS=()
NAMES=()
SIGNALS=()

# started NAME PID [SIGNAL]: registers a background process for cleanup.
started() {
    PIDS+=("$2")
    NAMES+=("$1")
    SIGNALS+=("${3:-TERM}")
}

heading() { printf '\n== %s\n' "$*"; }
step() { printf -- '-- %s\n' "$*"; }
fail() {
    printf 'demo: %s\n' "$*" >&2
    exit 1
}

# stop_process NAME PID [SIGNAL]: sends SIGNAL (default TERM), then SIGKILL
# after 5 s, and reaps the process. Prints how it ended and returns 1 unless
# it exited with status 0.
stop_process() {
    local name=$1 pid=$2 signal=${3:-TERM} status=0
    kill -0 "$pid" 2>/dev/null && kill -"$signal" "$pid" 2>/dev/null
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "demo: $name (pid $pid) did not stop within 5 s, killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || status=$?
    if [ "$status" -eq 0 ]; then
        step "$name stopped"
    elif [ "$status" -gt 128 ]; then
        step "$name ended by signal $(kill -l $((status - 128))) (exit status $status)"
        return 1
    else
        step "$name exited with status $status"
        return 1
    fi
}

# Stops whatever is still running, in reverse start order, when the script
# exits early. The normal path stops the servers in step 7.
stop_all() {
    local status=$?
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill -0 "${PIDS[i]}" 2>/dev/null || continue
        stop_process "${NAMES[i]}" "${PIDS[i]}" "${SIGNALS[i]}" >&2 || true
    done
    if [ "$status" -ne 0 ]; then
        echo "demo: failed (exit status $status); logs and configs are in $RUN" >&2
    fi
    exit "$status"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for FILE PATTERN WHAT PID: waits until FILE has a line matching
# PATTERN, and fails early when process PID, which writes FILE, has exited.
wait_for() {
    local file=$1 pattern=$2 what=$3 pid=$4
    local deadline=$((SECONDS + WAIT_SECONDS))
    until [ -f "$file" ] && grep -q -- "$pattern" "$file"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "demo: process $pid exited while waiting for $what; last lines of $file:" >&2
            tail -n 20 "$file" >&2 2>/dev/null || true
            exit 1
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "demo: timed out after ${WAIT_SECONDS} s waiting for $what; last lines of $file:" >&2
            tail -n 20 "$file" >&2 2>/dev/null || true
            exit 1
        fi
        sleep 0.1
    done
}

[ -x "$BIN" ] || fail "$BIN not found; run 'make' first"
[ -x "$TOOLS/workload" ] || fail "$TOOLS/workload not found; run 'make' first"
[ -x "$TOOLS/audit-tail" ] || fail "$TOOLS/audit-tail not found; run 'make' first"
command -v nats-server >/dev/null || fail "nats-server not found; run scripts/install-deps.sh as root"

rm -rf "$RUN"
mkdir -p "$RUN"/{nats,keys,secrets,logs}
chmod 0700 "$RUN/keys" "$RUN/secrets"
PKI=$RUN/pki

heading "1. Trust domain citadel.mesh (openssl, dev only)"
if ! pki_output=$("$ROOT/scripts/demo-pki.sh" "$PKI" 2>&1); then
    printf '%s\n' "$pki_output" >&2
    fail "scripts/demo-pki.sh failed"
fi
step "root CA $PKI/ca.pem is the trust bundle of citadel.mesh"
step "SVIDs (valid 1 h): agent/energy, agent/security, adapter/bacnet, service/twin,"
step "  service/citadel-callout, agent/intruder (no policy); rogue.pem claims agent/energy"
step "  but is signed by a second CA that is not in the bundle"

heading "2. Keys of the callout service"
ISSUER=$("$BIN" keys generate account --out "$RUN/keys/issuer.seed")
XKEY=$("$BIN" keys generate curve --out "$RUN/keys/xkey.seed")
step "issuer account key $ISSUER (signs the user JWTs)"
step "curve key $XKEY (nats-server encrypts callout requests to it)"
openssl rand -hex 24 >"$RUN/secrets/auth.password"
chmod 0600 "$RUN/secrets/auth.password"

heading "3. nats-server $(nats-server --version | sed 's/^nats-server: //') on 127.0.0.1"
# ca_file trusts both roots on purpose: TLS only proves that the client has
# the key of a certificate from a known CA, and the callout decides which CA
# may vouch for which trust domain. So the rogue SVID passes the TLS handshake
# and is rejected by citadel-callout, which checks it against the citadel.mesh
# bundle alone. In production, ca_file would hold the bundles the callout uses.
cat >"$RUN/nats/nats-server.conf" <<EOF
server_name: citadel-demo
listen: 127.0.0.1:-1
ports_file_dir: "$RUN/nats"
tls {
  cert_file: "$PKI/server.pem"
  key_file: "$PKI/server.key"
  ca_file: "$PKI/tls-client-cas.pem"
  verify: true
}
jetstream {
  store_dir: "$RUN/nats/jetstream"
  max_memory_store: 64MB
  max_file_store: 256MB
}
accounts {
  # The callout service logs in here with user/password (plus its SVID for
  # TLS). Its audit stream lives in this account too. The password is plain
  # text here, so nats-server logs a warning. Use a bcrypt hash in production.
  AUTH {
    jetstream: enabled
    users: [ { user: auth, password: "$(cat "$RUN/secrets/auth.password")" } ]
  }
  # The account that the policies place the workloads in.
  APP { jetstream: enabled }
  SYS {}
}
system_account: SYS
authorization {
  timeout: 3
  auth_callout {
    issuer: "$ISSUER"
    auth_users: [ auth ]
    account: AUTH
    xkey: "$XKEY"
  }
}
EOF
chmod 0600 "$RUN/nats/nats-server.conf"

nats-server -c "$RUN/nats/nats-server.conf" >"$RUN/logs/nats-server.log" 2>&1 &
NATS_PID=$!
started nats-server "$NATS_PID" INT
wait_for "$RUN/nats/nats-server_$NATS_PID.ports" 'tls://' "the nats-server ports file" "$NATS_PID"
URL=$(grep -o 'tls://127\.0\.0\.1:[0-9]*' "$RUN/nats/nats-server_$NATS_PID.ports" | head -n 1)
[ -n "$URL" ] || fail "no tls:// URL in $RUN/nats/nats-server_$NATS_PID.ports"
step "listening on $URL (TLS with client certificates, auth callout to account AUTH, JetStream)"

heading "4. citadel-callout"
cat >"$RUN/citadel-callout.json" <<EOF
{
  "nats": {
    "servers": ["$URL"],
    "user": "auth",
    "password_file": "secrets/auth.password",
    "tls": {
      "ca_file": "pki/ca.pem",
      "cert_file": "pki/callout.pem",
      "key_file": "pki/callout.key"
    }
  },
  "issuer_seed_file": "keys/issuer.seed",
  "xkey_seed_file": "keys/xkey.seed",
  "default_account": "APP",
  "accounts": ["APP"],
  "max_ttl_seconds": 3600,
  "trust_domains": [
    {"name": "citadel.mesh", "bundle_pem": "pki/ca.pem"}
  ],
  "policy_dir": "$POLICY_DIR",
  "audit": {"stream": "$STREAM", "subject_prefix": "citadel.audit"},
  "log_level": "info"
}
EOF
"$BIN" serve --config "$RUN/citadel-callout.json" 2>"$RUN/logs/citadel-callout.log" &
SERVICE_PID=$!
started citadel-callout "$SERVICE_PID"
wait_for "$RUN/logs/citadel-callout.log" '"event":"subscribed"' "citadel-callout to subscribe" \
    "$SERVICE_PID"
step "connected as user auth, serving \$SYS.REQ.USER.AUTH with the policies in $POLICY_DIR"

TRANSCRIPT=$RUN/logs/workloads.out
W=("$TOOLS/workload" --url "$URL" --ca "$PKI/ca.pem")
# workload NAME SVID ACTION...: runs the workload client with PKI/SVID.pem and
# keeps a copy of its output in TRANSCRIPT.
workload() {
    local name=$1 svid=$2
    shift 2
    "${W[@]}" --cert "$PKI/$svid.pem" --key "$PKI/$svid.key" --name "$name" "$@" |
        tee -a "$TRANSCRIPT"
}

# background_workload OUT NAME SVID ACTION...: starts the workload client in
# the background with its output in OUT. BACKGROUND_PID is the client's own
# process id, so that the cleanup trap stops the client itself.
background_workload() {
    local out=$1 name=$2 svid=$3
    shift 3
    "${W[@]}" --cert "$PKI/$svid.pem" --key "$PKI/$svid.key" --name "$name" "$@" >"$out" &
    BACKGROUND_PID=$!
    started "workload $name" "$BACKGROUND_PID"
}

heading "5. Workloads"
step "digital twin subscribes to everything it may read and listens in the background"
background_workload "$RUN/logs/twin.out" twin twin \
    --sub 'telemetry.>' --sub 'hvac.>' --sub 'door.>' --wait 60000
TWIN_PID=$BACKGROUND_PID
wait_for "$RUN/logs/twin.out" 'sub door\.>:' "the twin's subscriptions" "$TWIN_PID"
cat "$RUN/logs/twin.out"

step "BACnet adapter answers setpoint requests in the background"
background_workload "$RUN/logs/bacnet-reply.out" bacnet bacnet \
    --data 'setpoint applied' --reply 'hvac.*.setpoint' --wait 60000
REPLIER_PID=$BACKGROUND_PID
wait_for "$RUN/logs/bacnet-reply.out" 'reply hvac' "the BACnet adapter's subscription" \
    "$REPLIER_PID"
cat "$RUN/logs/bacnet-reply.out"

step "energy agent: zone setpoints allowed, server room and doors denied"
workload energy energy --data 21.5 --pub hvac.zone1.setpoint \
    --data 19.0 --request hvac.zone2.setpoint \
    --data 16.0 --pub hvac.serverroom.setpoint \
    --pub door.lobby.unlock

step "security agent: doors allowed, HVAC denied"
workload security security --data 'badge 4711' --pub door.lobby.unlock --pub door.lobby.lock \
    --pub hvac.zone1.setpoint --sub 'telemetry.hvac.>'

step "BACnet adapter publishes telemetry"
workload bacnet bacnet --data 22.4 --pub telemetry.hvac.zone1.temperature \
    --data closed --pub telemetry.door.lobby.state

step "digital twin tries to publish: it is read-only"
workload twin twin --pub hvac.zone1.setpoint

step "agent/intruder: valid SVID of citadel.mesh, but no policy"
workload intruder intruder --pub hvac.zone1.setpoint

step "rogue SVID: claims agent/energy, signed by a CA outside the citadel.mesh bundle"
workload rogue rogue --pub hvac.zone1.setpoint

step "client without a certificate (nats-server requires one)"
"${W[@]}" --name no-cert --pub hvac.zone1.setpoint | tee -a "$TRANSCRIPT"

step "what the background workloads received"
# SIGTERM ends the clients' --wait; they then close their connections and exit.
kill -TERM "$TWIN_PID" "$REPLIER_PID"
wait "$TWIN_PID" "$REPLIER_PID"
sed -n '/sub door\.>:/,$p' "$RUN/logs/twin.out" | tail -n +2
sed -n '/reply hvac/,$p' "$RUN/logs/bacnet-reply.out" | tail -n +2
cat "$RUN/logs/twin.out" "$RUN/logs/bacnet-reply.out" >>"$TRANSCRIPT"

heading "6. Audit events on stream $STREAM (account AUTH)"
AUDIT=("$TOOLS/audit-tail" --url "$URL" --ca "$PKI/ca.pem" --cert "$PKI/callout.pem"
       --key "$PKI/callout.key" --user auth --password-file "$RUN/secrets/auth.password"
       --stream "$STREAM")
# Every connection that reached the callout is one decision. The service
# publishes its events asynchronously, so poll until all of them are stored.
expected=$(grep -c -E 'connect (ok|rejected: Authorization Violation)' "$TRANSCRIPT" || true)
deadline=$((SECONDS + WAIT_SECONDS))
while :; do
    "${AUDIT[@]}" >"$RUN/logs/audit.jsonl"
    [ "$(wc -l <"$RUN/logs/audit.jsonl")" -ge "$expected" ] && break
    if [ $SECONDS -ge $deadline ]; then
        echo "demo: expected $expected audit events, found $(wc -l <"$RUN/logs/audit.jsonl")" >&2
        break
    fi
    sleep 0.2
done
step "one line per decision"
"${AUDIT[@]}" --summary
step "the same events as stored, one JSON line each (also in $RUN/logs/audit.jsonl)"
cat "$RUN/logs/audit.jsonl"

heading "7. Stopping"
stopped_cleanly=true
stop_process citadel-callout "$SERVICE_PID" || stopped_cleanly=false
# nats-server 2.10 exits with status 0 on SIGINT but 1 on SIGTERM, although
# both shut it down gracefully.
stop_process nats-server "$NATS_PID" INT || stopped_cleanly=false
PIDS=()
NAMES=()
SIGNALS=()
step "logs and configs stay in $RUN"
if [ "$stopped_cleanly" != true ]; then
    echo "demo: a server did not exit cleanly; see $RUN/logs" >&2
    exit 1
fi
