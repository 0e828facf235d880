# Sourced by build-image.sh and smoke-test.sh: makes podman usable on this
# machine and provides a Debian 12 base image when none can be pulled.
#
# What it works around (each only when the plain setting fails):
#  - podman/buildah missing: installs Debian's packages (as root).
#  - crun cannot run containers on a cgroup v1/v2 hybrid host ("cgroups in
#    hybrid mode not supported"), and the sandbox may forbid raising
#    RLIMIT_NOFILE/RLIMIT_NPROC to podman's defaults: then a containers.conf
#    that selects runc and ulimits at or below the current ones is used
#    (CONTAINERS_CONF, a file under deploy/.cache; nothing in /etc changes).
#  - no container registry reachable: a Debian 12 root file system made with
#    debootstrap from Debian's package mirror, imported as a local image.

deploy_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_dir=${AUDIOSOCKET_BRIDGE_DEPLOY_CACHE:-$deploy_dir/.cache}
# Debian's mirror: DEBIAN_MIRROR, else the one this host's apt uses.
host_mirror() {
  { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
    grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}'; } |
    grep -v -- '-security' | grep -E '/debian/?$' | head -1 | sed 's:/$::' || true
}
debian_mirror=${DEBIAN_MIRROR:-$(host_mirror)}
local_base=localhost/audiosocket-bridge-base:debian12

say() { echo "[$(basename "$0")] $*" >&2; }

ensure_container_tools() {
  local need=()
  command -v podman >/dev/null || need+=(podman)
  command -v buildah >/dev/null || need+=(buildah)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  command -v runc >/dev/null || need+=(runc)
  dpkg-query -W -f='${Status}' uidmap 2>/dev/null | grep -q "install ok installed" || need+=(uidmap)
  ((${#need[@]})) || return 0
  if [[ $(id -u) -ne 0 ]]; then
    say "missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root"
    return 1
  fi
  say "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${need[@]}" crun fuse-overlayfs slirp4netns containernetworking-plugins >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${need[@]}" crun fuse-overlayfs slirp4netns containernetworking-plugins >/dev/null
  }
}

# Runs a trivial container from image $1 with the current settings.
probe_run() { podman run --rm --network=none --entrypoint /bin/true "$1" >/dev/null 2>&1; }

# Chooses podman settings that can run containers here; exports CONTAINERS_CONF
# when the defaults do not work. Needs an image to probe with ($1).
configure_podman() {
  local image=$1
  if probe_run "$image"; then
    say "podman works with its default settings"
    return 0
  fi
  mkdir -p "$cache_dir"
  local nofile nproc
  nofile=$(ulimit -Hn); ((nofile > 20000)) && nofile=20000
  nproc=$(ulimit -Hu); [[ $nproc == unlimited ]] && nproc=32768; ((nproc > 32768)) && nproc=32768
  cat >"$cache_dir/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
CONF
  export CONTAINERS_CONF=$cache_dir/containers.conf
  if probe_run "$image"; then
    say "podman works with runc and ulimits nofile=$nofile nproc=$nproc ($CONTAINERS_CONF)"
    return 0
  fi
  say "podman cannot run a container here, even with runc and lowered ulimits:"
  podman run --rm --network=none --entrypoint /bin/true "$image" >&2 || true
  return 1
}

# Prints the names of two images for the builder and runtime stages: the
# official Debian 12 images when they are present or can be pulled, else the
# local debootstrapped base (made once, cached in podman's storage).
choose_base_images() {
  local full=docker.io/library/debian:12 slim=docker.io/library/debian:12-slim
  if podman image exists "$full" && podman image exists "$slim"; then
    echo "$full $slim"; return 0
  fi
  if podman pull -q "$full" >/dev/null 2>&1 && podman pull -q "$slim" >/dev/null 2>&1; then
    echo "$full $slim"; return 0
  fi
  say "cannot pull $full / $slim (no container registry reachable); using $local_base"
  make_local_base || return 1
  echo "$local_base $local_base"
}

# A Debian 12 (bookworm) minbase root file system, trimmed like debian:12-slim
# (no apt lists, no cached .debs, dpkg excludes docs/man pages), imported into
# podman. Needs root (debootstrap) and Debian's package mirror.
make_local_base() {
  if podman image exists "$local_base"; then return 0; fi
  [[ $(id -u) -eq 0 ]] || { say "debootstrap needs root"; return 1; }
  [[ -n $debian_mirror ]] || { say "no Debian mirror found in apt's sources; set DEBIAN_MIRROR"; return 1; }
  local rootfs=$cache_dir/rootfs-bookworm
  rm -rf "$rootfs"; mkdir -p "$cache_dir"
  say "debootstrap --variant=minbase bookworm from $debian_mirror (about a minute)"
  debootstrap --variant=minbase bookworm "$rootfs" "$debian_mirror" >"$cache_dir/debootstrap.log" 2>&1 || {
    say "debootstrap failed; see $cache_dir/debootstrap.log"; return 1; }
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $debian_mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${debian_mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'EXC'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EXC
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/usr/share/doc/*/changelog*
  tar -C "$rootfs" --numeric-owner -c . |
    podman import --change 'CMD ["bash"]' - "$local_base" >/dev/null || return 1
  rm -rf "$rootfs"
  say "imported $local_base"
}
