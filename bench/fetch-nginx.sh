#!/bin/sh
# Unpacks Debian's nginx and its stream module into bench/.native for the docker-gateway bench's
# native-relay reference (bench/lib/native-relay.ts). Downloads the two packages with apt and
# extracts them with dpkg -x: nothing is installed and no service is started.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest="$here/.native"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
apt-get download nginx libnginx-mod-stream
mkdir -p "$dest"
for deb in ./*.deb; do dpkg -x "$deb" "$dest"; done
"$dest/usr/sbin/nginx" -v
echo "nginx unpacked into $dest"
