#!/usr/bin/env bash
# Build the docker image localstack/localstack:4.13.1 without any container
# registry: debootstrap a Debian bookworm root filesystem, pip-install the
# pinned LocalStack freeze into a venv inside it, and `docker import` it.
#
# Usage: localstack/build-image.sh [--force]
#
# Environment:
#   DEBIAN_MIRROR     Debian mirror for debootstrap (default: the host's apt source)
#   IMAGE             image reference to create (default: localstack/localstack:4.13.1)
#   BUILD_TMPDIR      where the temporary rootfs goes (default: /var/tmp; must allow
#                     device nodes and exec, which a tmpfs /tmp may not)
#   http_proxy, https_proxy, no_proxy, PIP_INDEX_URL, PIP_EXTRA_INDEX_URL,
#   PIP_TRUSTED_HOST, PIP_CERT, PIP_DEFAULT_TIMEOUT are passed on to the build.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE=${IMAGE:-localstack/localstack:4.13.1}
CONSTRAINTS="$SCRIPT_DIR/constraints-4.13.1.txt"
SUITE=bookworm
VENV=/opt/localstack/venv

FORCE=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h | --help)
            sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "unknown argument: $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

# debootstrap, chroot and mount need root; -E keeps the mirror/proxy/pip settings.
if [[ $EUID -ne 0 ]]; then
    exec sudo -E "$0" "$@"
fi

if [[ $FORCE -eq 0 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "$IMAGE already exists (use --force to rebuild)"
    exit 0
fi

[[ -f $CONSTRAINTS ]] || {
    echo "missing $CONSTRAINTS" >&2
    exit 1
}

START=$SECONDS
PHASE_START=$SECONDS
PHASE=""
phase() {
    if [[ -n $PHASE ]]; then
        printf '==> %s done in %ds\n' "$PHASE" "$((SECONDS - PHASE_START))"
    fi
    PHASE=$1
    PHASE_START=$SECONDS
    [[ -z $PHASE ]] || printf '==> %s\n' "$PHASE"
}

# shellcheck source=localstack/host-apt.sh
source "$SCRIPT_DIR/host-apt.sh"
DEBIAN_MIRROR=${DEBIAN_MIRROR:-$(host_mirror "$SUITE" | head -n1)}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
export_apt_proxy

# pip on the host may sit behind a TLS-intercepting proxy; the chroot's stock
# ca-certificates would not trust it, so reuse whatever bundle the host's pip uses.
pip_config() {
    python3 -m pip config list 2>/dev/null | sed -n "s/^[^.]*\.$1='\(.*\)'\$/\1/p" | head -n1 || true
}
HOST_CA=${PIP_CERT:-$(pip_config cert)}
HOST_CA=${HOST_CA:-${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-}}}
[[ -n $HOST_CA && -f $HOST_CA ]] || HOST_CA=""
PIP_INDEX=${PIP_INDEX_URL:-$(pip_config index-url)}
PIP_EXTRA_INDEX=${PIP_EXTRA_INDEX_URL:-$(pip_config extra-index-url)}
PIP_TRUSTED=${PIP_TRUSTED_HOST:-$(pip_config trusted-host)}

echo "image:       $IMAGE"
echo "mirror:      $DEBIAN_MIRROR"
echo "CA bundle:   ${HOST_CA:-<none: the rootfs bundle>}"
echo "http_proxy:  ${http_proxy:-<none>}"

WORK=$(mktemp -d "${BUILD_TMPDIR:-/var/tmp}/localstack-image.XXXXXX")
ROOTFS=$WORK/rootfs
cleanup() {
    local t=$SECONDS
    if mountpoint -q "$ROOTFS/proc" 2>/dev/null; then
        umount "$ROOTFS/proc" || umount -l "$ROOTFS/proc" || true
    fi
    # --one-file-system: never follow a mount that failed to come off.
    rm -rf --one-file-system "$WORK"
    printf '==> removed the temporary rootfs in %ds\n' "$((SECONDS - t))"
}
trap cleanup EXIT

phase "install debootstrap"
# The keyring matters on non-Debian hosts (e.g. Ubuntu): debootstrap verifies
# the bookworm Release file against it.
if ! command -v debootstrap >/dev/null || [[ ! -f /usr/share/keyrings/debian-archive-keyring.gpg ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        debootstrap debian-archive-keyring >/dev/null
fi

phase "debootstrap $SUITE"
# python3-venv brings ensurepip's bundled pip/setuptools wheels; every pinned
# package ships a manylinux wheel or is pure Python, so no compiler is needed.
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$ROOTFS" "$DEBIAN_MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    tail -n 30 "$WORK/debootstrap.log" >&2
    exit 1
}

phase "configure rootfs"
# Without /etc/hosts LocalStack cannot resolve localhost and never gets Ready
# (docker bind-mounts its own at run time, but a bare chroot does not).
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOTFS/etc/hosts"
echo localstack >"$ROOTFS/etc/hostname"
# Host DNS for the pip step only; replaced before the image is made.
cp -L /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
if [[ -n $HOST_CA ]]; then
    cp -L "$HOST_CA" "$ROOTFS/tmp/build-ca.pem"
fi
install -d "$ROOTFS/var/lib/localstack"

cat >"$ROOTFS/usr/local/bin/localstack-entrypoint" <<'EOF'
#!/bin/sh
# Defaults suited to tests: no outbound DNS/cert/analytics traffic, no
# persistence, only the services Intake uses. Every value can be overridden
# with `docker run -e` / testcontainers' with_env_var.
set -e
: "${GATEWAY_LISTEN:=0.0.0.0:4566}"
: "${LOCALSTACK_VOLUME_DIR:=/var/lib/localstack}"
: "${SKIP_SSL_CERT_DOWNLOAD:=1}"
: "${DISABLE_EVENTS:=1}"
: "${DNS_ADDRESS:=0}"
: "${PERSISTENCE:=0}"
# Each SQS call otherwise queues internal CloudWatch metric calls, which pile
# up under bursts and slow every later test.
: "${SQS_DISABLE_CLOUDWATCH_METRICS:=1}"
: "${SERVICES:=s3,sqs,sns,cloudwatch,sts,events}"
export GATEWAY_LISTEN LOCALSTACK_VOLUME_DIR SKIP_SSL_CERT_DOWNLOAD DISABLE_EVENTS \
    DNS_ADDRESS PERSISTENCE SQS_DISABLE_CLOUDWATCH_METRICS SERVICES
mkdir -p "$LOCALSTACK_VOLUME_DIR"
exec /opt/localstack/venv/bin/python -m localstack.runtime.main "$@"
EOF
chmod 0755 "$ROOTFS/usr/local/bin/localstack-entrypoint"

phase "pip install (venv $VENV)"
cp "$CONSTRAINTS" "$ROOTFS/tmp/constraints.txt"
mount -t proc proc "$ROOTFS/proc"
chroot_env=(
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    HOME=/root LANG=C.UTF-8
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1
    PIP_DEFAULT_TIMEOUT="${PIP_DEFAULT_TIMEOUT:-120}"
)
if [[ -n $HOST_CA ]]; then
    chroot_env+=(PIP_CERT=/tmp/build-ca.pem SSL_CERT_FILE=/tmp/build-ca.pem REQUESTS_CA_BUNDLE=/tmp/build-ca.pem)
fi
[[ -z $PIP_INDEX ]] || chroot_env+=(PIP_INDEX_URL="$PIP_INDEX")
[[ -z $PIP_EXTRA_INDEX ]] || chroot_env+=(PIP_EXTRA_INDEX_URL="$PIP_EXTRA_INDEX")
[[ -z $PIP_TRUSTED ]] || chroot_env+=(PIP_TRUSTED_HOST="$PIP_TRUSTED")
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [[ -z ${!v:-} ]] || chroot_env+=("$v=${!v}")
done
# --use-pep517: the few sdists (jsonpath-rw, airspeed-ext) otherwise take the
# deprecated setup.py-install path of bookworm's pip 23.0. The import check
# catches a freeze that installs but cannot start (see the shared README).
chroot "$ROOTFS" /usr/bin/env -i "${chroot_env[@]}" /bin/sh -eu -c "
    python3 -m venv $VENV
    $VENV/bin/pip install --quiet --use-pep517 -r /tmp/constraints.txt
    $VENV/bin/python -c 'import localstack.runtime.main, service_identity'
"
umount "$ROOTFS/proc"

phase "slim rootfs"
rm -f "$ROOTFS/tmp/build-ca.pem" "$ROOTFS/tmp/constraints.txt"
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin \
    "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/root/.cache \
    "$ROOTFS"/var/log/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
    "$ROOTFS"/usr/share/locale/*
# Docker supplies resolv.conf at run time; do not ship the build host's.
: >"$ROOTFS/etc/resolv.conf"
du -sh "$ROOTFS"

phase "docker import $IMAGE"
# A rebuild would otherwise leave the previous image behind, untagged.
old_id=$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
# docker import keeps no metadata, so the run-time contract is given here:
# testcontainers publishes only EXPOSEd ports and waits for "Ready." on
# stdout, which must not sit in a pipe buffer (PYTHONUNBUFFERED).
tar -C "$ROOTFS" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . |
    docker import \
        --change 'EXPOSE 4566' \
        --change "ENV PATH=$VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PYTHONUNBUFFERED=1' \
        --change 'WORKDIR /opt/localstack' \
        --change 'ENTRYPOINT ["/usr/local/bin/localstack-entrypoint"]' \
        --message "LocalStack 4.13.1 (debootstrap $SUITE, localstack/build-image.sh)" \
        - "$IMAGE" >/dev/null

if [[ -n $old_id ]] && [[ $old_id != "$(docker image inspect --format '{{.Id}}' "$IMAGE")" ]]; then
    docker image rm "$old_id" >/dev/null 2>&1 || echo "note: previous image $old_id is still in use; not removed"
fi

phase ""
size=$(docker image inspect --format '{{.Size}}' "$IMAGE")
printf '==> built %s (%d MB) in %ds\n' "$IMAGE" "$((size / 1000000))" "$((SECONDS - START))"
