#!/usr/bin/env bash
# Check deploy/ without a cluster or an AWS account, with validators from PyPI (pinned,
# installed into a venv under target/deploy on first use):
#
#   - every YAML and JSON file parses; yamllint on the YAML;
#   - deploy/compose.yaml: `docker compose config` (or docker-compose);
#   - the pipeline files: `intake check` (the intake:local image, or INTAKE_BIN), and
#     deploy/k8s/configmap.yaml holds deploy/pipeline.aws.toml verbatim;
#   - Kubernetes built-in kinds: kubernetes-validate --strict against the schemas it
#     bundles for Kubernetes 1.30 and 1.37;
#   - KEDA's ScaledObject and TriggerAuthentication: against the openAPIV3Schema of
#     KEDA's CRDs (unknown fields refused) when KEDA_CRDS names a directory holding
#     keda.sh_scaledobjects.yaml and keda.sh_triggerauthentications.yaml (KEDA's
#     config/crd/bases, or `kubectl get crd scaledobjects.keda.sh -o yaml` output);
#     no registry package ships them, so without KEDA_CRDS this step is skipped;
#   - deploy/ecs/*.json: against the RegisterTaskDefinition input of botocore's ECS
#     API model (field names, types, enums, required fields).
#
# None of this deploys anything: the manifests are untested against a real cluster.
# Usage: deploy/validate.sh        Environment: KEDA_CRDS, INTAKE_BIN, VALIDATE_VENV
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
VENV=${VALIDATE_VENV:-$REPO/target/deploy/validate-venv}
cd "$SCRIPT_DIR"

if [[ ! -x $VENV/bin/kubernetes-validate ]]; then
    echo "==> installing the validators into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        yamllint==1.38.0 kubernetes-validate==1.37.0 jsonschema==4.26.0 botocore==1.44.8 pyyaml
fi
PY=$VENV/bin/python
failed=0
step() { printf '==> %s\n' "$*"; }
fail() {
    echo "FAILED: $*" >&2
    failed=1
}

step "parse every YAML and JSON file"
"$PY" - <<'EOF' || fail "parse"
import json, pathlib, sys, yaml
bad = 0
for p in sorted(pathlib.Path(".").rglob("*")):
    try:
        if p.suffix in (".yaml", ".yml"):
            n = sum(1 for d in yaml.safe_load_all(p.read_text()) if d is not None)
            print(f"  {p}: {n} document(s)")
        elif p.suffix == ".json":
            json.loads(p.read_text())
            print(f"  {p}: ok")
    except Exception as e:
        print(f"  {p}: {e}", file=sys.stderr)
        bad = 1
sys.exit(bad)
EOF

step "yamllint"
"$VENV/bin/yamllint" -s -d '{extends: default, rules: {line-length: {max: 120}, document-start: disable, comments: {min-spaces-from-content: 1}, truthy: {check-keys: false}}}' \
    compose.yaml k8s/ || fail "yamllint"

step "compose config"
if docker compose version >/dev/null 2>&1; then
    docker compose -f compose.yaml config -q || fail "compose config"
elif command -v docker-compose >/dev/null; then
    docker-compose -f compose.yaml config -q || fail "compose config"
else
    echo "  skipped: neither docker compose nor docker-compose"
fi

step "intake check (pipeline.compose.toml, pipeline.aws.toml)"
if [[ -n ${INTAKE_BIN:-} ]]; then
    for f in pipeline.compose.toml pipeline.aws.toml; do "$INTAKE_BIN" check -c "$f" || fail "intake check $f"; done
elif docker image inspect intake:local >/dev/null 2>&1; then
    for f in pipeline.compose.toml pipeline.aws.toml; do
        docker run --rm --network none -v "$SCRIPT_DIR/$f:/tmp/$f:ro" intake:local check -c "/tmp/$f" || fail "intake check $f"
    done
else
    echo "  skipped: no intake:local image and no INTAKE_BIN"
fi
"$PY" - <<'EOF' || fail "configmap.yaml differs from pipeline.aws.toml"
import sys, yaml
cm = yaml.safe_load(open("k8s/configmap.yaml"))["data"]["pipeline.toml"]
if cm != open("pipeline.aws.toml").read():
    sys.exit("  k8s/configmap.yaml's pipeline.toml is not deploy/pipeline.aws.toml: paste it again")
print("  k8s/configmap.yaml holds pipeline.aws.toml verbatim")
EOF

step "kubernetes-validate --strict (Kubernetes 1.30 and 1.37)"
builtin=(k8s/namespace.yaml k8s/serviceaccounts.yaml k8s/configmap.yaml k8s/secret.yaml k8s/workers.yaml k8s/api.yaml)
for v in 1.30.0 1.37.0; do
    out=$("$VENV/bin/kubernetes-validate" --strict -k "$v" "${builtin[@]}" 2>&1) || true
    printf '%s\n' "${out//$'\n'/$'\n'  }" | sed '1s/^/  /'
    if grep -q -E '^(ERROR|WARN)' <<<"$out"; then fail "kubernetes-validate $v"; fi
done

step "KEDA resources against KEDA's CRD schemas"
if [[ -n ${KEDA_CRDS:-} ]]; then
    KEDA_CRDS=$KEDA_CRDS "$PY" - <<'EOF' || fail "KEDA schemas"
import os, sys, yaml, jsonschema
def strict(s):
    # Like kubernetes-validate --strict: an object schema with properties refuses others.
    if isinstance(s, dict):
        if s.get("type") == "object" and "properties" in s and "additionalProperties" not in s:
            s["additionalProperties"] = False
        for v in s.values():
            strict(v)
    elif isinstance(s, list):
        for v in s:
            strict(v)
    return s
schemas = {}
for name in ("keda.sh_scaledobjects.yaml", "keda.sh_triggerauthentications.yaml"):
    for crd in yaml.safe_load_all(open(os.path.join(os.environ["KEDA_CRDS"], name))):
        if not crd:
            continue
        kind = crd["spec"]["names"]["kind"]
        for ver in crd["spec"]["versions"]:
            schemas[(f'{crd["spec"]["group"]}/{ver["name"]}', kind)] = strict(ver["schema"]["openAPIV3Schema"])
bad = 0
for doc in yaml.safe_load_all(open("k8s/keda.yaml")):
    key = (doc["apiVersion"], doc["kind"])
    errors = list(jsonschema.Draft7Validator(schemas[key]).iter_errors(doc)) if key in schemas else ["no schema"]
    for e in errors:
        bad = 1
        print(f"  {doc['kind']}/{doc['metadata']['name']}: {getattr(e, 'message', e)} at {list(getattr(e, 'path', []))}", file=sys.stderr)
    if not errors:
        print(f"  {doc['kind']}/{doc['metadata']['name']}: passed")
sys.exit(bad)
EOF
else
    echo "  skipped: set KEDA_CRDS to a directory with KEDA's CRDs (keda.sh_scaledobjects.yaml, keda.sh_triggerauthentications.yaml)"
fi

step "ECS task definitions against botocore's RegisterTaskDefinition model"
"$PY" - <<'EOF' || fail "ECS task definitions"
import glob, json, sys, botocore, botocore.session
from botocore.validate import ParamValidator
shape = botocore.session.get_session().get_service_model("ecs").operation_model("RegisterTaskDefinition").input_shape
bad = 0
for path in sorted(glob.glob("ecs/*.json")):
    report = ParamValidator().validate(json.load(open(path)), shape)
    if report.has_errors():
        bad = 1
        print(f"  {path}:\n{report.generate_report()}", file=sys.stderr)
    else:
        print(f"  {path}: passed (botocore {botocore.__version__})")
sys.exit(bad)
EOF

if [[ $failed -ne 0 ]]; then
    echo "deploy/validate.sh: some checks failed" >&2
    exit 1
fi
echo "deploy/validate.sh: all checks passed (the manifests are still untested against a cluster)"
