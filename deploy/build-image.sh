#!/usr/bin/env bash
# Builds the audiosocket-bridge image with podman from deploy/Containerfile.
#
#   deploy/build-image.sh                 the working tree (tracked and untracked,
#                                         not ignored files), tagged audiosocket-bridge:dev
#   deploy/build-image.sh --head          the last commit instead (git archive HEAD)
#   deploy/build-image.sh --tag NAME      another tag
#
# The context is a clean copy (no bazel-* links, no build outputs). Installs
# podman/buildah from Debian if missing; see container-env.sh for what it
# works around on machines without a registry or with a hybrid cgroup host.
set -euo pipefail
source "$(dirname "$0")/container-env.sh"
root=$(cd "$deploy_dir/.." && pwd)

tag=audiosocket-bridge:dev
source_mode=worktree
while (($#)); do
  case $1 in
    --head) source_mode=head ;;
    --tag) tag=$2; shift ;;
    *) echo "usage: $0 [--head] [--tag NAME]" >&2; exit 2 ;;
  esac
  shift
done

ensure_container_tools
mkdir -p "$cache_dir"
context=$(mktemp -d "$cache_dir/context.XXXXXX")
trap 'rm -rf "$context"' EXIT
if [[ $source_mode == head ]]; then
  git -C "$root" archive HEAD | tar -x -C "$context"
else
  (cd "$root" && git ls-files -co --exclude-standard -z |
    while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
    tar --null -T - -c) | tar -x -C "$context"
fi

revision=$(git -C "$root" rev-parse HEAD)
[[ $source_mode == head ]] || [[ -z $(git -C "$root" status --porcelain) ]] || revision="$revision-dirty"

read -r full slim < <(choose_base_images)
configure_podman "$full"

say "building $tag from the $source_mode (builder $full, runtime $slim)"
start=$(date +%s)
# --network=host: the builder stage reaches Debian's mirror as the host does.
podman build --network=host --layers \
  --build-arg DEBIAN_IMAGE="$full" --build-arg DEBIAN_SLIM_IMAGE="$slim" \
  --label org.opencontainers.image.revision="$revision" \
  -f "$deploy_dir/Containerfile" -t "$tag" "$context"
say "built $tag in $(($(date +%s) - start)) s: $(podman image inspect --format '{{.Size}}' "$tag") bytes"
