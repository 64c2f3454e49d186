#!/bin/sh
# Writes the systemd user units as the Debian package ships them into DIR,
# made from systemd/ (the one source of truth, so the sandbox cannot drift):
# vaultd runs from /usr/bin instead of ~/.local/bin, and the units point at
# the installed man page and docs instead of ~/.local/share/doc. Every
# sandbox line stays as it is (tests/tests/deb.rs compares the exposure).
#
#   packaging/units.sh DIR
set -eu
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
src=$(cd "$(dirname "$0")/../systemd" && pwd)
out=$1
mkdir -p "$out"
for u in vaultd.service vaultd.socket; do
    sed -e 's|^ExecStart=%h/\.local/bin/vaultd$|ExecStart=/usr/bin/vaultd|' \
        -e 's|^Documentation=file://%h/\.local/share/doc/tokenvault/README\.md$|Documentation=man:vaultd(1) man:vaultctl(1) file:///usr/share/doc/tokenvault/README.md.gz|' \
        -e 's|Install with \./install\.sh; check|Installed by the tokenvault package; check|' \
        -e 's|^# Install: \./install\.sh (or copy to ~/\.config/systemd/user/), then$|# Installed by the tokenvault package; each user enables it once with|' \
        -e 's|^#   systemctl --user daemon-reload \&\& systemctl --user enable --now vaultd\.socket$|#   systemctl --user enable --now vaultd.socket|' \
        -e 's|--user vaultd\.service$|--user /usr/lib/systemd/user/vaultd.service|' \
        "$src/$u" >"$out/$u"
    grep -q '%h/\.local/bin\|%h/\.local/share/doc' "$out/$u" &&
        { echo "$0: $u still names a per-user install path; update the sed above" >&2; exit 1; }
done
exit 0
