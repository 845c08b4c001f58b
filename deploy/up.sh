#!/usr/bin/env bash
# Bring Intake's compose stack up on this machine, with no registry:
#   1. build the images that are missing (localstack/build-image.sh for LocalStack,
#      deploy/build-image.sh for intake, intake-clamd and intake-postgres);
#   2. docker compose -f deploy/compose.yaml up -d (the project is "intake");
#   3. wait until the API answers /readyz, and say where everything is.
#
# Usage: deploy/up.sh [extra `compose up` arguments]
#   WORKERS=N deploy/up.sh     run N worker containers (default: compose.yaml's 2)
#   UP_TIMEOUT=SECONDS         how long to wait for the API (default 300)
# Stop it with: docker compose -f deploy/compose.yaml down -v   (or docker-compose)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
COMPOSE_FILE=$SCRIPT_DIR/compose.yaml
START=$SECONDS

# The Compose plugin where it is installed, else Debian's docker-compose (1.29).
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null; then
    compose=(docker-compose)
else
    echo "neither \`docker compose\` nor docker-compose is installed (Debian: apt-get install docker-compose)" >&2
    exit 1
fi
compose+=(--project-name intake -f "$COMPOSE_FILE")

docker image inspect localstack/localstack:4.13.1 >/dev/null 2>&1 || "$REPO/localstack/build-image.sh"
"$SCRIPT_DIR/build-image.sh"

args=(up -d)
[[ -z ${WORKERS:-} ]] || args+=(--scale "worker=$WORKERS")
echo "==> ${compose[*]} ${args[*]} $*"
"${compose[@]}" "${args[@]}" "$@"

echo "==> waiting for the API to be ready (GET /readyz)"
deadline=$((SECONDS + ${UP_TIMEOUT:-300}))
until [[ $(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/readyz) == 200 ]]; do
    if ((SECONDS > deadline)); then
        echo "the API did not become ready; its log and the stack's state:" >&2
        "${compose[@]}" logs --tail 30 api provision >&2 || true
        "${compose[@]}" ps >&2
        exit 1
    fi
    sleep 2
done
"${compose[@]}" ps
cat <<EOF
==> up in $((SECONDS - START))s
    API and web page   http://127.0.0.1:8080/   (dev tokens: POST /v1/dev/token)
    LocalStack         http://127.0.0.1:4566    (presigned URLs name http://localstack.localhost:4566,
                                                 which curl and browsers resolve to 127.0.0.1)
    logs               ${compose[*]} logs -f worker api
    stop               ${compose[*]} down -v
EOF
