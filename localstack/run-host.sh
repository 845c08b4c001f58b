#!/usr/bin/env bash
# Run LocalStack 4.13.1 directly on this machine (no Docker), in the
# foreground, with the same settings as the image built by build-image.sh.
# Stop it with Ctrl-C.
#
# Environment:
#   PORT              port on 127.0.0.1 (default 4566)
#   LOCALSTACK_VENV   venv to create/use (default <repo>/target/localstack-venv)
#   PYTHON            interpreter for a new venv (default python3.11; the pins
#                     need 3.11: releases after 4.13.1 use 3.12 syntax and the
#                     wheels are built for cp311)
#   LOCALSTACK_VOLUME_DIR, SERVICES, SQS_DISABLE_CLOUDWATCH_METRICS, ... are
#   passed to LocalStack and override the defaults below.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$SCRIPT_DIR")
CONSTRAINTS="$SCRIPT_DIR/constraints-4.13.1.txt"
VENV=${LOCALSTACK_VENV:-$REPO_DIR/target/localstack-venv}
PORT=${PORT:-4566}

find_python() {
    local py
    for py in "${PYTHON:-}" python3.11 python3; do
        if [[ -z $py ]] || ! command -v "$py" >/dev/null; then
            continue
        fi
        if "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            echo "$py"
            return
        fi
    done
    echo "no Python 3.11 found (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

# The venv copy of the pins records what was installed, so editing the
# constraints file re-syncs an existing venv instead of silently keeping old pins.
STAMP="$VENV/.constraints-4.13.1.txt"
if ! cmp -s "$CONSTRAINTS" "$STAMP" 2>/dev/null; then
    if [[ ! -x $VENV/bin/python ]]; then
        py=$(find_python)
        echo "creating $VENV with $py" >&2
        "$py" -m venv "$VENV"
    fi
    echo "installing the pinned LocalStack freeze into $VENV (takes a few minutes)" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$CONSTRAINTS"
    cp "$CONSTRAINTS" "$STAMP"
fi

# Defaults suited to tests: no outbound DNS/cert/analytics traffic, no
# persistence, only the services Intake uses.
export GATEWAY_LISTEN=${GATEWAY_LISTEN:-127.0.0.1:$PORT}
export LOCALSTACK_VOLUME_DIR=${LOCALSTACK_VOLUME_DIR:-$REPO_DIR/target/localstack-volume}
export SKIP_SSL_CERT_DOWNLOAD=${SKIP_SSL_CERT_DOWNLOAD:-1}
export DISABLE_EVENTS=${DISABLE_EVENTS:-1}
export DNS_ADDRESS=${DNS_ADDRESS:-0}
export PERSISTENCE=${PERSISTENCE:-0}
# Each SQS call otherwise queues internal CloudWatch metric calls, which pile
# up under bursts and slow every later test.
export SQS_DISABLE_CLOUDWATCH_METRICS=${SQS_DISABLE_CLOUDWATCH_METRICS:-1}
export SERVICES=${SERVICES:-s3,sqs,sns,cloudwatch,sts,events}
# Presigned URLs are checked as S3 checks them (signed length and type, expiry); the
# API tests rely on S3 refusing what the signature does not allow.
export S3_SKIP_SIGNATURE_VALIDATION=${S3_SKIP_SIGNATURE_VALIDATION:-0}
mkdir -p "$LOCALSTACK_VOLUME_DIR"

endpoint_host=${GATEWAY_LISTEN%%,*}
endpoint_host=${endpoint_host/#0.0.0.0:/127.0.0.1:}
echo "LocalStack endpoint: export INTAKE_TEST_ENDPOINT=http://$endpoint_host"

exec "$VENV/bin/python" -m localstack.runtime.main
