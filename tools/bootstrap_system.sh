#!/usr/bin/env bash
# Installs the system packages the local services need (idempotent).
#
#   tools/bootstrap_system.sh [--require-clamd] [--with-chromium]
#
# clamav-daemon gives us the real /usr/sbin/clamd; tools/services runs it itself
# (own config, own EICAR-only signature database), so the Debian service is never
# started: a policy-rc.d that denies service starts is put in place during the
# install, because the packaged clamd/freshclam services fail without signatures.
#
# --require-clamd  exit non-zero if clamd cannot be installed (the test suite needs it)
#                  instead of warning that the demo will use the development scanner.
# --with-chromium  also install chromium (browser tests).
# CLAMD_BIN        overrides the clamd path checked (default /usr/sbin/clamd; for tests).
set -euo pipefail

CLAMD="${CLAMD_BIN:-/usr/sbin/clamd}"

require_clamd=0
with_chromium=0
for arg in "$@"; do
    case "$arg" in
        --require-clamd) require_clamd=1 ;;
        --with-chromium) with_chromium=1 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "bootstrap_system: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

log() { echo "bootstrap_system: $*" >&2; }

# How to run apt: directly as root, through passwordless sudo, or not at all.
SUDO=""
can_install=1
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
        SUDO="sudo -n"
    else
        can_install=0
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    can_install=0
fi

apt_updated=0
policy_created=0
# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
    if [ "$policy_created" -eq 1 ]; then
        $SUDO rm -f /usr/sbin/policy-rc.d || true
    fi
}
trap cleanup EXIT

# Installs Debian packages without starting their services.
apt_install() {
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        # 101 = "action not allowed": invoke-rc.d then skips starting the service.
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        policy_created=1
    fi
    if [ "$apt_updated" -eq 0 ]; then
        log "apt-get update"
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    log "apt-get install $*"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

status=0

if [ -x "$CLAMD" ]; then
    log "clamd present: $("$CLAMD" --version 2>/dev/null || echo '?')"
elif [ "$can_install" -eq 1 ]; then
    if ! apt_install clamav-daemon; then
        log "installing clamav-daemon failed"
    fi
fi
if [ ! -x "$CLAMD" ]; then
    if [ "$require_clamd" -eq 1 ]; then
        log "ERROR: $CLAMD is missing and could not be installed (need root or" \
            "passwordless sudo for 'apt-get install clamav-daemon'). The tests scan with" \
            "the real clamd and cannot run without it."
        status=1
    else
        log "WARNING: $CLAMD is missing and could not be installed; the demo will" \
            "use the development EICAR-only scanner (NOT a virus scanner)."
    fi
fi

if [ "$with_chromium" -eq 1 ]; then
    if command -v chromium >/dev/null 2>&1; then
        log "chromium present"
    elif [ "$can_install" -eq 1 ] && apt_install chromium; then
        log "chromium installed"
    else
        log "ERROR: chromium is missing and could not be installed"
        status=1
    fi
fi

exit "$status"
