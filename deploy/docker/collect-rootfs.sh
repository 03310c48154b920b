#!/bin/sh
# collect-rootfs.sh — assembles a shell-less root filesystem for a FROM-scratch runtime image.
# Runs in a build stage: copies each named program (symlinks resolved) and every shared library
# `ldd` says it loads, plus the dynamic loader, into ROOTFS at the same paths, and writes the
# only account the image knows (uid/gid 1000 "scout"), a files+dns nsswitch.conf and a
# world-writable sticky /tmp (the mount point of a tmpfs). Nothing else: no shell, no package
# manager, no coreutils, so an intruder in the container finds no tools.
# usage: collect-rootfs.sh ROOTFS PROGRAM...
set -eu

[ $# -ge 2 ] || { echo "usage: $0 ROOTFS PROGRAM..." >&2; exit 2; }
root=$1
shift

copy_file() {   # copy_file PATH: the real file behind PATH, stored at PATH inside the rootfs
  mkdir -p "$root$(dirname "$1")"
  cp -L "$1" "$root$1"
}

for prog in "$@"; do
  [ -x "$prog" ] || { echo "collect-rootfs: $prog is not an executable" >&2; exit 1; }
  copy_file "$prog"
  # ldd lines: "libx.so.1 => /lib/.../libx.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)".
  ldd "$prog" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u |
    while read -r lib; do copy_file "$lib"; done
  if ldd "$prog" | grep -q 'not found'; then
    echo "collect-rootfs: $prog needs a library that is not installed:" >&2
    ldd "$prog" >&2
    exit 1
  fi
done

mkdir -p "$root/etc" "$root/tmp"
chmod 1777 "$root/tmp"
printf 'root:x:0:0:root:/nonexistent:/nonexistent\nscout:x:1000:1000:Scout:/nonexistent:/nonexistent\n' \
  >"$root/etc/passwd"
printf 'root:x:0:\nscout:x:1000:\n' >"$root/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
