#!/usr/bin/env bash
# Builds the tokenvault Debian package and prints its path (the last line
# of stdout; everything else goes to stderr).
#
#   packaging/build-deb.sh            build target/debian/tokenvault_<v>-1_<arch>.deb
#
# Installs cargo-deb first if it is missing (cargo install --locked
# cargo-deb). Builds the release binaries, then generates from them what
# the package ships besides: the user units (packaging/units.sh), the man
# pages (`vaultctl man`, packaging/man's vaultd-man: both from the clap
# definitions) and the completions (`vaultctl completions`).
#
# Reproducible: the same commit and SOURCE_DATE_EPOCH (default: the last
# commit's date) give a byte-identical .deb, wherever the checkout and the
# target dir are (their paths are remapped out of the binaries); see
# packaging/check-reproducible.sh.
#
# Knobs: CARGO_TARGET_DIR (as cargo), SOURCE_DATE_EPOCH.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
say() { printf 'build-deb.sh: %s\n' "$*" >&2; }

if ! cargo deb --version >/dev/null 2>&1; then
    say "installing cargo-deb (cargo install --locked cargo-deb)"
    cargo install --locked cargo-deb >&2
fi

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH
target=${CARGO_TARGET_DIR:-$repo/target}
mkdir -p "$target"
target=$(cd "$target" && pwd)
cargo_home=${CARGO_HOME:-$HOME/.cargo}
# No build path in the binaries (panic locations, generated sources): two
# checkouts of one commit build the same bytes.
export RUSTFLAGS="${RUSTFLAGS:-} --remap-path-prefix=$target=/build/target --remap-path-prefix=$repo=/build/tokenvault --remap-path-prefix=$cargo_home=/build/cargo"

say "building release binaries (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
# One invocation, so the three share one feature set and vaultd's
# dependencies build once.
cargo build --release --locked -p vaultd -p vaultctl -p tokenvault-man >&2

assets=$target/release/deb
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
sh "$repo/packaging/units.sh" "$assets/units"
"$target/release/vaultctl" man "$assets/man"
"$target/release/vaultd-man" "$assets/man"
# Compressed here, with gzip -n (no name, no time: reproducible), as
# Debian policy asks: cargo-deb compresses man pages only when they are not
# under target/, and docs never.
gzip -9n "$assets"/man/*.1
mkdir -p "$assets/doc/docs"
gzip -9nc "$repo/README.md" >"$assets/doc/README.md.gz"
gzip -9nc "$repo/SECURITY.md" >"$assets/doc/SECURITY.md.gz"
for f in "$repo"/docs/*.md; do
    gzip -9nc "$f" >"$assets/doc/docs/$(basename "$f").gz"
done
"$target/release/vaultctl" completions bash >"$assets/completions/vaultctl.bash"
"$target/release/vaultctl" completions zsh >"$assets/completions/_vaultctl"
"$target/release/vaultctl" completions fish >"$assets/completions/vaultctl.fish"

out=$target/debian
mkdir -p "$out"
deb=$(cargo deb -p vaultctl --no-build --locked --output "$out" 2>&2 | tail -n 1)
[ -f "$deb" ] || { say "cargo deb printed no package path"; exit 1; }
say "built $deb ($(stat -c %s "$deb") bytes)"
printf '%s\n' "$deb"
