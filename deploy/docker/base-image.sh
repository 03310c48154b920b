#!/usr/bin/env bash
# base-image.sh — builds the local base image scout-base:bookworm that every Scout image starts
# from. There is no container registry here, so instead of pulling debian:bookworm we make a
# minimal Debian 12 root filesystem with debootstrap (minbase variant) from the same Debian mirror
# this machine's apt uses, and `docker import` it. Does nothing when the image already exists
# (pass --force to rebuild). Needs root, debootstrap and a running Docker daemon.
set -euo pipefail

IMAGE="${SCOUT_BASE_IMAGE:-scout-base:bookworm}"
SUITE=bookworm

if [ "${1:-}" != "--force" ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "base-image: $IMAGE already exists"
  exit 0
fi

command -v debootstrap >/dev/null 2>&1 || {
  echo "base-image: debootstrap is missing (apt-get install -y debootstrap)" >&2; exit 1; }

# The mirror apt uses on this machine (deb822 sources first, then the one-line format), else
# Debian's default. Security updates come from the matching debian-security mirror.
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -r "$f" ] || continue
  mirror=$(awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}' "$f")
  [ -n "$mirror" ] && break
done
if [ -z "$mirror" ] && [ -r /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list)
fi
mirror="${SCOUT_DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}"
mirror="${mirror%/}"
security="${mirror%/debian}/debian-security"

work=$(mktemp -d /tmp/scout-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

echo "base-image: debootstrap --variant=minbase $SUITE from $mirror"
debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror $SUITE main
deb $mirror $SUITE-updates main
deb $security $SUITE-security main
SOURCES
# Images never need the package cache, manuals or translations: keep layers small.
cat >"$rootfs/etc/apt/apt.conf.d/90scout-slim" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
APT
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
       "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*

tar --numeric-owner --xattrs -C "$rootfs" -c . |
  docker import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' - "$IMAGE" >/dev/null
echo "base-image: imported $IMAGE"
