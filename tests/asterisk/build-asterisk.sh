#!/usr/bin/env bash
# Builds Asterisk from a source tarball with only the modules the real-Asterisk
# tests use, installs it into a cache outside the checkout and prints the
# install prefix on its last line. A second run with the same tarball and
# module list reuses the cache and costs nothing. The prefix includes the
# headers (include/asterisk.h, include/asterisk/*.h) for out-of-tree modules.
#
#   tests/asterisk/build-asterisk.sh                 # the tarball in ../shared/asterisk/
#   ASTERISK_SOURCE=asterisk-22.5.0.tar.gz tests/asterisk/build-asterisk.sh
#
# Environment:
#   ASTERISK_SOURCE  an Asterisk 20+ source tarball (default: the newest
#                    asterisk-src-*.tar.gz in ../shared/asterisk/ beside the checkout)
#   ASTERISK_CACHE   where builds are kept (default: ~/.cache/audiosocket-bridge/asterisk)
#   JOBS             parallel make jobs (default: nproc)
# Exit status: 0 built or reused (prefix printed), 3 no source tarball found
# (the reason printed), 1 the build failed (its log's path printed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

source_tarball=${ASTERISK_SOURCE:-}
if [[ -z $source_tarball ]]; then
  source_tarball=$(ls -1 "$root"/../shared/asterisk/asterisk-src-*.tar.gz 2>/dev/null | tail -n 1 || true)
fi
if [[ -z $source_tarball || ! -f $source_tarball ]]; then
  echo "no Asterisk source tarball: set ASTERISK_SOURCE to an Asterisk 20+ source tarball (looked in ../shared/asterisk/)" >&2
  exit 3
fi

# The modules the tests load. Changing this list makes a new cache entry.
modules=(
  res_audiosocket app_audiosocket chan_audiosocket
  pbx_config app_dial app_echo app_playback app_verbose app_senddtmf app_record app_read
  app_originate app_playtones app_milliwatt app_stack app_exec app_userevent app_dumpchan
  app_mixmonitor func_periodic_hook app_chanspy func_cut func_groupcount func_uri
  res_clioriginate res_timing_timerfd res_musiconhold
  codec_resample codec_ulaw codec_alaw format_wav format_pcm format_sln
  bridge_simple bridge_builtin_features func_channel func_strings func_logic func_global
  app_stasis res_ari res_ari_channels res_ari_model res_ari_applications res_ari_events
  res_stasis res_stasis_answer res_stasis_playback res_stasis_recording res_stasis_snoop
  res_http_websocket res_websocket_client res_sorcery_config res_sorcery_memory res_ari_bridges
  bridge_softmix
)
# Asterisk's own build needs these; sox and multimon-ng analyse recordings.
packages=(build-essential libedit-dev libjansson-dev libxml2-dev uuid-dev libsqlite3-dev
  libssl-dev pkg-config)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing Asterisk build dependencies: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

script_version=2
key=$( { sha256sum "$source_tarball" | cut -d' ' -f1; echo "${modules[*]}"; echo "$script_version"; } \
  | sha256sum | cut -c1-16)
cache=${ASTERISK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/audiosocket-bridge/asterisk}
prefix=$cache/$key
mkdir -p "$cache"

# One build at a time per cache entry; a second caller waits and reuses it.
exec 9>"$cache/$key.lock"
flock 9
if [[ -x $prefix/sbin/asterisk && -f $prefix/.complete ]]; then
  echo "$prefix"
  exit 0
fi

work=$cache/$key.build
log=$cache/$key.log
rm -rf "$work" "$prefix"
mkdir -p "$work"
echo "building Asterisk from $(basename "$source_tarball") into $prefix (log: $log); the first build takes several minutes" >&2
started=$SECONDS
if ! (
  set -euo pipefail
  cd "$work"
  tar xzf "$source_tarball" --strip-components="$(tar tzf "$source_tarball" | head -n 1 | grep -q '^[^/]*/$' && echo 1 || echo 0)"
  ./configure --prefix="$prefix" --without-pjproject-bundled --without-pjproject --with-jansson-bundled=no
  make menuselect.makeopts
  for c in MENUSELECT_ADDONS MENUSELECT_APPS MENUSELECT_BRIDGES MENUSELECT_CEL MENUSELECT_CDR \
      MENUSELECT_CHANNELS MENUSELECT_CODECS MENUSELECT_FORMATS MENUSELECT_FUNCS MENUSELECT_PBX \
      MENUSELECT_RES MENUSELECT_TESTS MENUSELECT_UTILS MENUSELECT_AGIS MENUSELECT_CORE_SOUNDS \
      MENUSELECT_MOH MENUSELECT_EXTRA_SOUNDS; do
    menuselect/menuselect --disable-category "$c" menuselect.makeopts
  done
  menuselect/menuselect --enable DISABLE_XMLDOC menuselect.makeopts
  for m in "${modules[@]}"; do menuselect/menuselect --enable "$m" menuselect.makeopts; done
  make -j"${JOBS:-$(nproc)}" NOISY_BUILD=
  make install NOISY_BUILD=
  # Headers too: out-of-tree modules (asterisk/build.sh) compile against them.
  make install-headers NOISY_BUILD=
) >"$log" 2>&1; then
  echo "Asterisk build failed after $((SECONDS - started)) s; last lines of $log:" >&2
  tail -n 30 "$log" >&2
  exit 1
fi
for m in "${modules[@]}"; do
  if [[ ! -f $prefix/lib/asterisk/modules/$m.so ]]; then
    echo "Asterisk built, but module $m is missing (see $log)" >&2
    exit 1
  fi
done
if [[ ! -f $prefix/include/asterisk.h || ! -f $prefix/include/asterisk/buildopts.h ]]; then
  echo "Asterisk built, but its headers were not installed (see $log)" >&2
  exit 1
fi
rm -rf "$work"
touch "$prefix/.complete"
echo "Asterisk built in $((SECONDS - started)) s" >&2
echo "$prefix"
