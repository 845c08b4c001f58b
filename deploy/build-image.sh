#!/usr/bin/env bash
# Build Intake's images without any container registry:
#
#   intake:local           the release `intake` binary, non-root, entrypoint `intake`,
#                          /etc/intake/pipeline.toml (INTAKE_CONFIG), a HEALTHCHECK
#   intake-clamd:local     Debian's clamd with the project's test signatures, TCP 3310
#   intake-postgres:local  Debian's PostgreSQL 15 for the ledger
#
# All three are `docker build`s FROM intake-base:bookworm, a debootstrapped Debian
# bookworm that deploy/build-base.sh makes (with sudo) when it is missing. Packages come
# from the Debian mirror, the binary from `cargo build --release -p intake-cli --locked`.
#
# Usage: deploy/build-image.sh [--force] [--force-base] [intake|clamd|postgres ...]
#   (no names: all three; an image that exists is kept unless --force)
#
# Environment:
#   CARGO_TARGET_DIR   where cargo builds (default: target/deploy in the repository,
#                      apart from the developers' target/ so neither disturbs the other)
#   INTAKE_BINARY      use this intake binary instead of building one
#   INTAKE_IMAGE, CLAMD_IMAGE, POSTGRES_IMAGE, BASE_IMAGE   image names (defaults above)
#   DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR, BUILD_TMPDIR, http_proxy: see build-base.sh
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
export BASE_IMAGE=${BASE_IMAGE:-intake-base:bookworm}
INTAKE_IMAGE=${INTAKE_IMAGE:-intake:local}
CLAMD_IMAGE=${CLAMD_IMAGE:-intake-clamd:local}
POSTGRES_IMAGE=${POSTGRES_IMAGE:-intake-postgres:local}

FORCE=0 FORCE_BASE=0 WANT=()
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        --force-base) FORCE_BASE=1 FORCE=1 ;;
        intake | clamd | postgres) WANT+=("$arg") ;;
        -h | --help)
            sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "unknown argument: $arg (try --help)" >&2
            exit 2
            ;;
    esac
done
[[ ${#WANT[@]} -gt 0 ]] || WANT=(intake clamd postgres)

START=$SECONDS
image_of() {
    case $1 in
        intake) echo "$INTAKE_IMAGE" ;;
        clamd) echo "$CLAMD_IMAGE" ;;
        postgres) echo "$POSTGRES_IMAGE" ;;
    esac
}
exists() { docker image inspect "$1" >/dev/null 2>&1; }
mb() { echo "$(($(docker image inspect --format '{{.Size}}' "$1") / 1000000)) MB"; }

TODO=()
for name in "${WANT[@]}"; do
    if [[ $FORCE -eq 1 ]] || ! exists "$(image_of "$name")"; then
        TODO+=("$name")
    else
        echo "$(image_of "$name") already exists (use --force to rebuild)"
    fi
done
[[ ${#TODO[@]} -gt 0 ]] || exit 0

WORK=$(mktemp -d "${BUILD_TMPDIR:-/var/tmp}/intake-images.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# The binary first: it is the step most likely to fail (and the slowest), so a failure
# leaves every image as it was.
binary=""
if [[ " ${TODO[*]} " == *" intake "* ]]; then
    binary=${INTAKE_BINARY:-}
    if [[ -z $binary ]]; then
        export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target/deploy}
        echo "==> cargo build --release -p intake-cli --locked (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
        t=$SECONDS
        (cd "$REPO" && cargo build --release -p intake-cli --locked)
        echo "==> cargo build done in $((SECONDS - t))s"
        binary=$CARGO_TARGET_DIR/release/intake
    fi
    [[ -x $binary ]] || {
        echo "no intake binary at $binary" >&2
        exit 1
    }
fi

if [[ $FORCE_BASE -eq 1 ]]; then
    "$SCRIPT_DIR/build-base.sh" --force
elif ! exists "$BASE_IMAGE"; then
    "$SCRIPT_DIR/build-base.sh"
fi

# --network host: RUN steps reach the Debian mirror (or an apt proxy on the host's
# loopback) exactly as the host does. The images run on ordinary networks.
build() {
    local image=$1 context=$2 t=$SECONDS
    echo "==> docker build $image"
    docker build --network host --tag "$image" \
        --label intake.build=deploy \
        "$context" >"$WORK/build-${image//[:\/]/_}.log" 2>&1 || {
        tail -n 40 "$WORK/build-${image//[:\/]/_}.log" >&2
        echo "docker build $image failed" >&2
        exit 1
    }
    echo "==> built $image ($(mb "$image")) in $((SECONDS - t))s"
}

for name in "${TODO[@]}"; do
    case $name in
        intake)
            ctx=$WORK/intake
            mkdir -p "$ctx"
            cp "$SCRIPT_DIR/images/intake/Dockerfile" "$SCRIPT_DIR/images/intake/intake-healthcheck" "$ctx/"
            cp "$REPO/pipeline.toml" "$ctx/pipeline.toml"
            # Debug symbols stay in the cargo build; the image gets the stripped binary.
            cp "$binary" "$ctx/intake"
            strip --strip-debug "$ctx/intake" 2>/dev/null || true
            # Every shared library the binary links must be in the base (glibc's libc,
            # libm, libgcc_s; everything else is linked statically): ask the base's ldd.
            missing=$(docker run --rm --network none -v "$ctx/intake:/intake:ro" --entrypoint ldd \
                "$BASE_IMAGE" /intake | grep 'not found' || true)
            if [[ -n $missing ]]; then
                echo "the intake binary needs libraries the base image lacks:" >&2
                echo "$missing" >&2
                exit 1
            fi
            build "$INTAKE_IMAGE" "$ctx"
            ;;
        clamd) build "$CLAMD_IMAGE" "$SCRIPT_DIR/images/clamd" ;;
        postgres) build "$POSTGRES_IMAGE" "$SCRIPT_DIR/images/postgres" ;;
    esac
done
# A rebuild leaves the previous image (and base) untagged; remove such leftovers of ours
# that no container uses.
docker image prune --force --filter label=intake.build=deploy >/dev/null || true

echo "==> done in $((SECONDS - START))s: $(for n in "${WANT[@]}"; do printf '%s (%s)  ' "$(image_of "$n")" "$(mb "$(image_of "$n")")"; done)"
