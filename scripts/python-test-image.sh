#!/usr/bin/env bash
# python-test-image.sh builds, once, the root filesystem of the test-only Python image that
# the containerd tests run lightweight Python components in (the fixtures' python:3.x
# images resolve to it; see docs/testing.md). Debian bookworm minbase with python3, pip and
# venv, made by debootstrap as root, without the PEP 668 marker (like the python:3.x images).
# It is cached as a tarball and reused by every later run; it prints one line when it
# cannot build it.
set -euo pipefail
cache=${KFPBOX_TEST_CACHE:-/var/cache/kfp-box-test}
out=$cache/python-bookworm-rootfs.tar
[[ -s $out ]] && exit 0
if [[ $(id -u) != 0 ]]; then
  echo "python-test-image: debootstrap needs root; the containerd Python tests will say so" >&2
  exit 0
fi
if ! command -v debootstrap >/dev/null; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap; } >/dev/null 2>&1 ||
    { echo "python-test-image: could not install debootstrap with apt-get" >&2; exit 1; }
fi
mirror=${KFPBOX_DEBIAN_MIRROR:-$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | head -1 | awk '{print $2}' || true)}
mirror=${mirror:-http://deb.debian.org/debian}
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/build-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "python-test-image: building the test Python image with debootstrap from $mirror (a few minutes, once; cached in $out)" >&2
if ! debootstrap --variant=minbase --include=python3,python3-pip,python3-venv bookworm "$tmp/root" "$mirror" >"$tmp/log" 2>&1; then
  echo "python-test-image: debootstrap failed (last lines below; full log kept in $cache/debootstrap.log)" >&2
  tail -5 "$tmp/log" >&2
  cp "$tmp/log" "$cache/debootstrap.log"
  exit 1
fi
rm -f "$tmp"/root/usr/lib/python3*/EXTERNALLY-MANAGED
rm -rf "$tmp"/root/var/cache/apt/archives/*.deb "$tmp"/root/var/lib/apt/lists/* "$tmp"/root/debootstrap
tar -C "$tmp/root" --numeric-owner --exclude=./dev/* --exclude=./proc/* --exclude=./sys/* -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "python-test-image: done ($(du -h "$out" | cut -f1))" >&2
