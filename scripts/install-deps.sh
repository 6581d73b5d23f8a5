#!/usr/bin/env bash
# Installs what citadel-callout needs to build, test and run its demo on Debian 12:
# the -dev packages of its libraries, the test framework, the openssl tool, and a
# nats-server of at least 2.10 (auth callout first shipped in 2.10.0).
#
# Debian 12 only has nats-server 2.9, so the script takes the 2.10.27 package from
# Debian 13 ("trixie"). That .deb depends only on libc6 (>= 2.34) and adduser, so it
# runs on Debian 12. It is unpacked with dpkg -x into NATS_DIR instead of installed,
# which keeps the system's package database free of a trixie package, and
# /usr/local/bin/nats-server is linked to it.
#
# Running it again when everything is present changes nothing.
set -euo pipefail

NATS_VERSION=2.10.27
NATS_DIR=/opt/citadel-callout/nats-server-${NATS_VERSION}
PACKAGES=(build-essential pkg-config libnats-dev libssl-dev libjwt-dev libjansson-dev
          libsodium-dev libcriterion-dev openssl ca-certificates)

log() { printf 'install-deps: %s\n' "$*" >&2; }

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        log "missing: $*; run this script as root (or with sudo) to install it"
        exit 1
    fi
}

install_packages() {
    local missing=()
    local pkg
    for pkg in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0

    need_root "Debian packages ${missing[*]}"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Prints the version of the nats-server on PATH, or nothing.
nats_server_version() {
    command -v nats-server >/dev/null 2>&1 || return 0
    nats-server --version 2>/dev/null | sed -n 's/^nats-server: v\([0-9.]*\).*/\1/p'
}

nats_server_is_new_enough() {
    local version major minor
    version=$(nats_server_version)
    [ -n "$version" ] || return 1
    major=${version%%.*}
    minor=${version#*.}
    minor=${minor%%.*}
    [ "$major" -gt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -ge 10 ]; }
}

install_nats_server() {
    if nats_server_is_new_enough; then
        return 0
    fi
    if [ -x "$NATS_DIR/usr/sbin/nats-server" ]; then
        need_root "the link /usr/local/bin/nats-server"
        ln -sf "$NATS_DIR/usr/sbin/nats-server" /usr/local/bin/nats-server
        return 0
    fi

    need_root "nats-server ${NATS_VERSION}"
    log "fetching nats-server ${NATS_VERSION} from Debian 13 (trixie)"
    local work
    work=$(mktemp -d)
    trap 'rm -rf "$work"' RETURN
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
        >"$work/sources.list"
    local apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
                    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
                    -o APT::Sandbox::User=root)
    apt-get "${apt_opts[@]}" update -q
    (cd "$work" && apt-get "${apt_opts[@]}" download "nats-server=${NATS_VERSION}-*")

    local deb
    deb=$(ls "$work"/nats-server_*.deb)
    mkdir -p "$NATS_DIR"
    dpkg -x "$deb" "$NATS_DIR"
    ln -sf "$NATS_DIR/usr/sbin/nats-server" /usr/local/bin/nats-server
    log "installed $("$NATS_DIR/usr/sbin/nats-server" --version) at $NATS_DIR"
}

install_packages
install_nats_server
