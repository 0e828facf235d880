#!/usr/bin/env bash
# Validates deploy/: every YAML under deploy/k8s parses (and passes the
# Kubernetes schema where it is an object), every overlay and example renders
# with kustomize, every rendered object passes the Kubernetes JSON schemas
# (kubernetes-models) and strict decoding into the Go API types (no unknown
# fields), the rules the bridge relies on hold (grace period above the drain,
# gRPC probes, ports, security context, headless Services), and the
# Containerfile's runtime stage provides every library the binary links.
#
#   deploy/validate.sh [COUNTS_FILE]     writes "PASSED FAILED SKIPPED" there
#   VERBOSE=1 deploy/validate.sh         also lists the passing tests
#   DEPLOY_IMAGE_TESTS=1 deploy/validate.sh
#                                        also builds the image and runs
#                                        deploy/smoke-test.sh in it (minutes;
#                                        DEPLOY_IMAGE_SOURCE=head builds HEAD)
#
# Installs its tools on first use into deploy/.tools (gitignored), from the
# Go module proxy (kustomize; k8s-strict, built from deploy/validate/strict)
# and the npm registry (kubernetes-models, yaml). Nothing is fetched at run
# time: the schemas ship inside the packages.
set -uo pipefail
deploy=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$deploy/.." && pwd)
counts=${1:-}
tools=$deploy/.tools
start=$(date +%s)

KUSTOMIZE_VERSION=v5.8.1
NPM_PACKAGES=(kubernetes-models@5.1.0 @kubernetes-models/prometheus-operator@6.0.0 yaml@2.9.1)

fail_setup() {
  echo "deploy/validate.sh: $*" >&2
  [[ -n $counts ]] && echo "0 1 0" >"$counts"
  echo "0 passed, 1 failed"
  exit 1
}

mkdir -p "$tools/bin" "$tools/node"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
if [[ ! -x $tools/bin/kustomize ]] || [[ $("$tools/bin/kustomize" version 2>/dev/null) != "$KUSTOMIZE_VERSION" ]]; then
  echo "installing kustomize $KUSTOMIZE_VERSION (go install)" >&2
  GOBIN=$tools/bin go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2 ||
    fail_setup "go install kustomize failed"
fi
strict_src=$deploy/validate/strict
if [[ ! -x $tools/bin/k8s-strict ]] || [[ -n $(find "$strict_src" -newer "$tools/bin/k8s-strict" -type f) ]]; then
  echo "building k8s-strict (k8s.io/api)" >&2
  (cd "$strict_src" && go build -o "$tools/bin/k8s-strict" .) >&2 || fail_setup "building k8s-strict failed"
fi
stamp="$tools/node/.installed"
if [[ ! -f $stamp ]] || [[ $(cat "$stamp") != "${NPM_PACKAGES[*]}" ]]; then
  echo "installing ${NPM_PACKAGES[*]} (npm)" >&2
  (cd "$tools/node" && [[ -f package.json ]] || echo '{"private":true}' >package.json
   cd "$tools/node" && npm install --no-audit --no-fund --no-save --silent "${NPM_PACKAGES[@]}") >&2 ||
    fail_setup "npm install failed"
  echo "${NPM_PACKAGES[*]}" >"$stamp"
fi

# The binary whose libraries the runtime stage must provide: the one the C++
# suite built; else build it (fastbuild links the same libraries as -c opt).
binary=$root/bazel-bin/server/audiosocket-bridge
if [[ ! -x $binary ]] && command -v bazel >/dev/null; then
  (cd "$root" && bazel build //server:audiosocket-bridge >/dev/null 2>&1) || true
fi

# A copy, so a concurrent bazel build cannot swap it out during the check.
rm -f "$tools/audiosocket-bridge"
[[ -x $binary ]] && cp "$binary" "$tools/audiosocket-bridge" 2>/dev/null
binary=$tools/audiosocket-bridge

cp "$deploy/validate/validate.mjs" "$tools/node/validate.mjs"
out=$(cd "$tools/node" && node validate.mjs "$deploy" "$tools/bin/kustomize" "$tools/bin/k8s-strict" "$binary")
rc=$?
echo "$out" | sed '$d'
read -r passed failed skipped <<<"$(echo "$out" | tail -1)"
if ! [[ ${passed:-} =~ ^[0-9]+$ && ${failed:-} =~ ^[0-9]+$ && ${skipped:-} =~ ^[0-9]+$ ]]; then
  passed=0 failed=1 skipped=0
fi
((rc != 0 && failed == 0)) && failed=1

# Image build and smoke test: minutes, so only on request.
if [[ ${DEPLOY_IMAGE_TESTS:-} == 1 ]]; then
  if bash "$deploy/build-image.sh" ${DEPLOY_IMAGE_SOURCE:+--$DEPLOY_IMAGE_SOURCE} >&2; then
    smoke=$(bash "$deploy/smoke-test.sh" 2>&1); echo "$smoke" | grep -E '^(FAIL|---)' -A100
    passed=$((passed + 1 + $(grep -c '^ok ' <<<"$smoke")))
    failed=$((failed + $(grep -c '^FAIL ' <<<"$smoke")))
  else
    echo "not ok - image build (deploy/build-image.sh)"; failed=$((failed + 1))
  fi
else
  echo "skip - image build and smoke test (set DEPLOY_IMAGE_TESTS=1; see docs/DEPLOY.md)"
  skipped=$((skipped + 1))
fi

[[ -n $counts ]] && echo "$passed $failed $skipped" >"$counts"
echo "deploy: $(($(date +%s) - start)) s"
if ((skipped > 0)); then echo "$passed passed, $failed failed, $skipped skipped"; else echo "$passed passed, $failed failed"; fi
((failed == 0))
