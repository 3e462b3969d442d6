#!/usr/bin/env bash
# deploy/: renders the Kubernetes manifests and validates them offline, checks the
# Prometheus rules and that the dashboard and alerts use only exported metrics.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec deploy/scripts/check.sh
