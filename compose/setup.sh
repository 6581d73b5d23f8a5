#!/usr/bin/env bash
# Prepares compose/run/ for docker compose: a citadel.mesh PKI whose server
# certificate also names the host "nats", the callout's issuer and curve keys,
# the password of the service user, and compose/.env for nats-server.
# Needs build/citadel-callout (run `make` first). Never overwrites run/.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$HERE/../build/citadel-callout
RUN=$HERE/run

[ -x "$BIN" ] || { echo "setup: $BIN not found; run 'make' first" >&2; exit 1; }
[ -e "$RUN" ] && { echo "setup: $RUN already exists; remove it to start over" >&2; exit 1; }

mkdir -p "$RUN/keys" "$RUN/secrets"
chmod 0700 "$RUN/keys" "$RUN/secrets"
SERVER_SANS="DNS:nats, DNS:localhost, IP:127.0.0.1" SVID_HOURS=${SVID_HOURS:-24} CA_DAYS=${CA_DAYS:-30} \
    "$HERE/../scripts/demo-pki.sh" "$RUN/pki"
issuer=$("$BIN" keys generate account --out "$RUN/keys/issuer.seed")
xkey=$("$BIN" keys generate curve --out "$RUN/keys/xkey.seed")
password=$(openssl rand -hex 24)
(umask 077 && printf '%s\n' "$password" >"$RUN/secrets/auth.password")
(umask 077 && printf 'CALLOUT_ISSUER=%s\nCALLOUT_XKEY=%s\nAUTH_PASSWORD=%s\n' \
    "$issuer" "$xkey" "$password" >"$HERE/.env")
echo "setup: wrote $RUN and $HERE/.env; now run: docker compose up --build" >&2
