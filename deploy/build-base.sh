#!/usr/bin/env bash
# Build the base image intake-base:bookworm without any container registry:
# debootstrap a minimal Debian bookworm root filesystem and `docker import` it.
# Intake's own images (intake, intake-clamd, intake-postgres) are `docker build`s
# FROM this image, so they share its one layer. deploy/build-image.sh calls this
# script when the base is missing.
#
# Usage: deploy/build-base.sh [--force]
#
# Environment:
#   DEBIAN_MIRROR           Debian mirror (default: the host's bookworm apt source)
#   DEBIAN_SECURITY_MIRROR  security mirror (default: the host's bookworm-security source)
#   BASE_IMAGE              image reference to create (default: intake-base:bookworm)
#   BUILD_TMPDIR            where the temporary rootfs goes (default: /var/tmp; must
#                           allow device nodes and exec, which a tmpfs /tmp may not)
#   http_proxy              passed on to debootstrap (default: apt's Acquire::http::Proxy)
#
# The recipe is localstack/build-image.sh's (same mirror and proxy discovery, same
# minbase debootstrap, same import), minus LocalStack's Python venv, plus what a
# base for `docker build` needs: apt sources for updates and security, no service
# starts during package installs, and no documentation.
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-intake-base:bookworm}
SUITE=bookworm

FORCE=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h | --help)
            sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "unknown argument: $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

# debootstrap and chroot need root; -E keeps the mirror and proxy settings.
if [[ $EUID -ne 0 ]]; then
    exec sudo -E "$0" "$@"
fi

if [[ $FORCE -eq 0 ]] && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    echo "$BASE_IMAGE already exists (use --force to rebuild)"
    exit 0
fi

START=$SECONDS

# shellcheck source=localstack/host-apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/../localstack/host-apt.sh"
DEBIAN_MIRROR=${DEBIAN_MIRROR:-$(host_mirror "$SUITE" | head -n1)}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-$(host_mirror "$SUITE-security" | head -n1)}
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
export_apt_proxy

echo "image:       $BASE_IMAGE"
echo "mirror:      $DEBIAN_MIRROR (security: $DEBIAN_SECURITY_MIRROR)"
echo "http_proxy:  ${http_proxy:-<none>}"

WORK=$(mktemp -d "${BUILD_TMPDIR:-/var/tmp}/intake-base.XXXXXX")
ROOTFS=$WORK/rootfs
cleanup() {
    # --one-file-system: never follow a mount that failed to come off.
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

if ! command -v debootstrap >/dev/null || [[ ! -f /usr/share/keyrings/debian-archive-keyring.gpg ]]; then
    echo "==> install debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        debootstrap debian-archive-keyring >/dev/null
fi

echo "==> debootstrap $SUITE (minbase)"
# ca-certificates: Intake talks TLS to AWS and to PostgreSQL servers that want it.
debootstrap --variant=minbase --include=ca-certificates \
    "$SUITE" "$ROOTFS" "$DEBIAN_MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    tail -n 30 "$WORK/debootstrap.log" >&2
    exit 1
}

echo "==> configure rootfs"
cat >"$ROOTFS/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR $SUITE main
deb $DEBIAN_MIRROR $SUITE-updates main
deb $DEBIAN_SECURITY_MIRROR $SUITE-security main
EOF
if [[ -n ${http_proxy:-} ]]; then
    printf 'Acquire::http::Proxy "%s";\n' "$http_proxy" >"$ROOTFS/etc/apt/apt.conf.d/01proxy"
fi
# Packages installed by `docker build` must not try to start their services (there is
# no init), must not pull recommends, and leave no package lists or caches behind.
printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
chmod 0755 "$ROOTFS/usr/sbin/policy-rc.d"
cat >"$ROOTFS/etc/apt/apt.conf.d/90intake-image" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/90intake-image" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOTFS/etc/hosts"

echo "==> slim rootfs"
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin \
    "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/log/* \
    "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/locale/*
find "$ROOTFS/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
# Docker supplies resolv.conf and hostname at run time; do not ship the build host's.
: >"$ROOTFS/etc/resolv.conf"
: >"$ROOTFS/etc/hostname"
du -sh "$ROOTFS"

echo "==> docker import $BASE_IMAGE"
old_id=$(docker image inspect --format '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)
tar -C "$ROOTFS" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . |
    docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        --change 'LABEL intake.build=deploy' \
        --message "Debian $SUITE minbase (deploy/build-base.sh)" \
        - "$BASE_IMAGE" >/dev/null
if [[ -n $old_id ]] && [[ $old_id != "$(docker image inspect --format '{{.Id}}' "$BASE_IMAGE")" ]]; then
    docker image rm "$old_id" >/dev/null 2>&1 || echo "note: previous image $old_id is still in use; not removed"
fi

size=$(docker image inspect --format '{{.Size}}' "$BASE_IMAGE")
printf '==> built %s (%d MB) in %ds\n' "$BASE_IMAGE" "$((size / 1000000))" "$((SECONDS - START))"
