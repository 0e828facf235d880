#!/usr/bin/env bash
# Smoke test of the built image (deploy/build-image.sh), with podman, no
# network (the container gets only its own loopback):
#  1. image settings: numeric non-root USER, the three EXPOSEd ports,
#     STOPSIGNAL SIGTERM, exec-form ENTRYPOINT;
#  2. every shared library of the binary resolves in the runtime image (ldd);
#  3. the bridge starts as uid 10001 on a read-only root with no capabilities,
#     is PID 1, takes a setting from AUDIOSOCKET_BRIDGE_LISTEN, logs
#     "event":"listening";
#  4. `podman stop` (SIGTERM) drains it: exit status 0, "event":"stopped".
#   deploy/smoke-test.sh [IMAGE]     default audiosocket-bridge:dev
set -euo pipefail
source "$(dirname "$0")/container-env.sh"
image=${1:-audiosocket-bridge:dev}
name=audiosocket-bridge-smoke-$$
failures=0
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; failures=$((failures + 1)); fi
}

podman image exists "$image" || { say "no image $image; run deploy/build-image.sh first"; exit 1; }
configure_podman "$image"

inspect() { podman image inspect --format "$1" "$image"; }
check "USER is numeric non-root (10001:10001)" test "$(inspect '{{.Config.User}}')" = 10001:10001
ports=$(inspect '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}')
check "EXPOSE 9092 50051 9090 ($ports)" bash -c '[[ "'"$ports"'" == *9092/tcp* && "'"$ports"'" == *50051/tcp* && "'"$ports"'" == *9090/tcp* ]]'
check "STOPSIGNAL SIGTERM" test "$(inspect '{{.Config.StopSignal}}')" = SIGTERM
check "ENTRYPOINT is the binary, exec form" test "$(inspect '{{json .Config.Entrypoint}}')" = '["/usr/local/bin/audiosocket-bridge"]'

missing=$(podman run --rm --network=none --entrypoint /usr/bin/ldd "$image" /usr/local/bin/audiosocket-bridge 2>&1 | grep -c 'not found' || true)
check "all shared libraries resolve in the runtime image (ldd)" test "$missing" = 0

# The AudioSocket listener comes from the environment, as in Kubernetes
# (ConfigMap -> envFrom); the rest from flags.
args=(--grpc_listen=127.0.0.1:0)
help=$(podman run --rm --network=none "$image" --helpfull 2>&1 || true)
if grep -q -- '--metrics_listen' <<<"$help"; then args+=(--metrics_listen=127.0.0.1:0); fi
trap 'podman rm -f "$name" >/dev/null 2>&1 || true' EXIT
podman run -d --name "$name" --network=none --read-only --cap-drop=ALL \
  --security-opt=no-new-privileges -e AUDIOSOCKET_BRIDGE_LISTEN=127.0.0.1:0 \
  "$image" "${args[@]}" >/dev/null
listening=0
for _ in $(seq 1 100); do
  if podman logs "$name" 2>&1 | grep -q '"event":"listening"'; then listening=1; break; fi
  sleep 0.1
done
check "logs \"event\":\"listening\"" test "$listening" = 1
check "AUDIOSOCKET_BRIDGE_LISTEN from the environment is used (127.0.0.1)" \
  grep -q '"event":"listening".*"audiosocket":"127\.0\.0\.1:' <<<"$(podman logs "$name" 2>&1)"
check "runs as uid 10001" test "$(podman exec "$name" sh -c 'id -u' 2>/dev/null)" = 10001
pid1=$(podman exec "$name" sh -c 'tr "\0" " " </proc/1/cmdline' 2>/dev/null || true)
check "the bridge is PID 1 ($pid1)" bash -c '[[ "'"$pid1"'" == /usr/local/bin/audiosocket-bridge* ]]'

podman stop -t 20 "$name" >/dev/null
status=$(podman inspect --format '{{.State.ExitCode}}' "$name")
logs=$(podman logs "$name" 2>&1)
check "SIGTERM (podman stop) exits 0 (got $status)" test "$status" = 0
check "logs \"event\":\"draining\" with signal Terminated" grep -q '"event":"draining".*"signal":"Terminated"' <<<"$logs"
check "logs \"event\":\"stopped\"" grep -q '"event":"stopped"' <<<"$logs"
# The settings the Kubernetes manifests give (base ConfigMap + each overlay's
# patch) are accepted: the bridge starts and reaches "listening".
k8s=$deploy_dir/k8s
for overlay in push pull; do
  envs=()
  while IFS= read -r kv; do envs+=(-e "$kv"); done < <(
    cat "$k8s/base/configmap.yaml" "$k8s/overlays/$overlay/config.yaml" |
      sed -nE 's/^  (AUDIOSOCKET_BRIDGE_[A-Z_]+): "?([^"]*)"?$/\1=\2/p')
  out=$(timeout 20 podman run --rm --network=none --read-only --cap-drop=ALL "${envs[@]}" \
    --entrypoint /bin/sh "$image" -c '/usr/local/bin/audiosocket-bridge & p=$!; sleep 2; kill -TERM $p; wait $p; echo "exit=$?"' 2>&1 || true)
  check "starts with the $overlay overlay's settings ($((${#envs[@]} / 2)) variables) and exits 0 on SIGTERM" \
    bash -c 'grep -q "\"event\":\"listening\"" <<<"$1" && grep -q "^exit=0$" <<<"$1"' _ "$out"
  [[ $out == *'"event":"listening"'*exit=0* ]] || echo "$out" | tail -5
done

if ((failures)); then
  echo "--- container log:"; echo "$logs"
  echo "smoke test: $failures check(s) failed"; exit 1
fi
echo "smoke test: all checks passed"
