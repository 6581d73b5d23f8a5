#!/usr/bin/env bash
# Mints a development PKI for the trust domain citadel.mesh with the openssl tool.
#
#   scripts/demo-pki.sh OUT_DIR
#
# OUT_DIR receives (keys are mode 0600, certificates 0644):
#   ca.pem, ca.key              root CA of citadel.mesh (the trust bundle)
#   rogue-ca.pem, rogue-ca.key  a second root that is NOT in the bundle
#   server.pem, server.key      nats-server certificate, subjectAltName SERVER_SANS
#                               (default "IP:127.0.0.1, DNS:localhost")
#   NAME.pem, NAME.key          X.509-SVIDs signed by ca.pem:
#       callout   spiffe://citadel.mesh/service/citadel-callout
#       security  spiffe://citadel.mesh/agent/security
#       energy    spiffe://citadel.mesh/agent/energy
#       bacnet    spiffe://citadel.mesh/adapter/bacnet
#       twin      spiffe://citadel.mesh/service/twin
#       intruder  spiffe://citadel.mesh/agent/intruder  (valid SVID, no policy)
#   rogue.pem, rogue.key        SVID for spiffe://citadel.mesh/agent/energy signed by
#                               rogue-ca.pem, i.e. an impersonation attempt
#   tls-client-cas.pem          ca.pem + rogue-ca.pem, for nats-server's tls.ca_file
#
# SVIDs follow the X.509-SVID profile: exactly one URI SAN, CA:false, a critical
# keyUsage with digitalSignature, and extendedKeyUsage serverAuth + clientAuth.
# They are valid from 5 minutes in the past (to tolerate small clock differences)
# until SVID_HOURS hours from now (default 1). The CAs last CA_DAYS days (default 1).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi

OUT=$1
SVID_HOURS=${SVID_HOURS:-1}
CA_DAYS=${CA_DAYS:-1}
SERVER_SANS=${SERVER_SANS:-IP:127.0.0.1, DNS:localhost}
TRUST_DOMAIN=citadel.mesh

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
umask 077

# openssl ca keeps a small database per signing CA, here in the scratch folder.
write_ca_config() {
    local name=$1
    mkdir -p "$WORK/$name/new"
    : >"$WORK/$name/index.txt"
    echo 01 >"$WORK/$name/serial"
    cat >"$WORK/$name/ca.cnf" <<EOF
[ ca ]
default_ca = this_ca

[ this_ca ]
dir              = $WORK/$name
database         = \$dir/index.txt
serial           = \$dir/serial
new_certs_dir    = \$dir/new
default_md       = sha256
policy           = any_subject
unique_subject   = no
copy_extensions  = none
email_in_dn      = no

[ any_subject ]
organizationName = optional
commonName       = supplied

[ req ]
distinguished_name = req_dn
prompt             = no

[ req_dn ]
CN = unused

[ root_ext ]
basicConstraints       = critical, CA:true
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash

[ server_ext ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature, keyAgreement
extendedKeyUsage       = serverAuth
subjectAltName         = $SERVER_SANS
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
EOF
}

# Runs a command and prints its output only when it fails.
quiet() {
    if ! "$@" >"$WORK/openssl.log" 2>&1; then
        echo "demo-pki: failed: $*" >&2
        cat "$WORK/openssl.log" >&2
        exit 1
    fi
}

new_key() {
    quiet openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
    chmod 0600 "$1"
}

# openssl ca takes times as YYYYMMDDHHMMSSZ (UTC).
utc_time() {
    date -u -d "$1" +%Y%m%d%H%M%SZ
}

# make_root NAME CN: a self-signed root, written to OUT/NAME.pem and OUT/NAME.key.
make_root() {
    local name=$1 cn=$2
    write_ca_config "$name"
    new_key "$OUT/$name.key"
    quiet openssl req -new -config "$WORK/$name/ca.cnf" -key "$OUT/$name.key" \
        -subj "/O=$TRUST_DOMAIN/CN=$cn" -out "$WORK/$name/root.csr"
    quiet openssl ca -batch -config "$WORK/$name/ca.cnf" -selfsign -keyfile "$OUT/$name.key" \
        -in "$WORK/$name/root.csr" -out "$OUT/$name.pem" -notext -rand_serial \
        -startdate "$(utc_time '-5 minutes')" -enddate "$(utc_time "+$CA_DAYS days")" \
        -extensions root_ext
    chmod 0644 "$OUT/$name.pem"
}

# sign CA NAME CN EXT_SECTION [EXT_FILE]: a leaf signed by CA, valid SVID_HOURS.
sign() {
    local ca=$1 name=$2 cn=$3 section=$4 extfile=${5:-}
    new_key "$OUT/$name.key"
    quiet openssl req -new -config "$WORK/$ca/ca.cnf" -key "$OUT/$name.key" \
        -subj "/O=$TRUST_DOMAIN/CN=$cn" -out "$WORK/$name.csr"
    local ext_args=(-extensions "$section")
    [ -n "$extfile" ] && ext_args+=(-extfile "$extfile")
    quiet openssl ca -batch -config "$WORK/$ca/ca.cnf" -cert "$OUT/$ca.pem" -keyfile "$OUT/$ca.key" \
        -in "$WORK/$name.csr" -out "$OUT/$name.pem" -notext -rand_serial \
        -startdate "$(utc_time '-5 minutes')" -enddate "$(utc_time "+$SVID_HOURS hours")" \
        "${ext_args[@]}"
    chmod 0644 "$OUT/$name.pem"
}

# svid CA NAME SPIFFE_ID: an X.509-SVID whose only URI SAN is SPIFFE_ID.
svid() {
    local ca=$1 name=$2 id=$3
    local extfile="$WORK/$name.ext"
    cat >"$extfile" <<EOF
[ svid_ext ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature, keyAgreement
extendedKeyUsage       = serverAuth, clientAuth
subjectAltName         = URI:$id
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
EOF
    local path=${id#spiffe://*/}
    sign "$ca" "$name" "${path//\//.}" svid_ext "$extfile"
}

make_root ca "$TRUST_DOMAIN dev root"
make_root rogue-ca "rogue root (not in the bundle)"

sign ca server localhost server_ext

svid ca callout  "spiffe://$TRUST_DOMAIN/service/citadel-callout"
svid ca security "spiffe://$TRUST_DOMAIN/agent/security"
svid ca energy   "spiffe://$TRUST_DOMAIN/agent/energy"
svid ca bacnet   "spiffe://$TRUST_DOMAIN/adapter/bacnet"
svid ca twin     "spiffe://$TRUST_DOMAIN/service/twin"
svid ca intruder "spiffe://$TRUST_DOMAIN/agent/intruder"
svid rogue-ca rogue "spiffe://$TRUST_DOMAIN/agent/energy"

cat "$OUT/ca.pem" "$OUT/rogue-ca.pem" >"$OUT/tls-client-cas.pem"
chmod 0644 "$OUT/tls-client-cas.pem"

# The CA keys are not needed after this point; a real deployment would keep
# them offline. The demo keeps them so that a user can mint more SVIDs.
echo "demo-pki: minted trust domain $TRUST_DOMAIN in $OUT" >&2
