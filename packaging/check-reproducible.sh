#!/usr/bin/env bash
# Builds the .deb twice from the same commit (HEAD; uncommitted changes are
# not in it), each from its own fresh copy of the tree at a different path
# with its own fresh target dir, with the same SOURCE_DATE_EPOCH, and checks
# that the two files are byte-identical. Two full release builds: about
# twice packaging/build-deb.sh's time, so not part of CI.
#
#   packaging/check-reproducible.sh      prints both sha256 sums; exit 0 if equal
#
# Knobs: SOURCE_DATE_EPOCH (default: HEAD's commit date),
# TOKENVAULT_REPRO_KEEP=1 keeps the work dir (to compare the trees).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
say() { printf 'check-reproducible.sh: %s\n' "$*" >&2; }
commit=$(git -C "$repo" rev-parse HEAD)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct "$commit")}
work=$(mktemp -d)
if [ "${TOKENVAULT_REPRO_KEEP:-0}" = 1 ]; then
    say "keeping $work"
else
    trap 'rm -rf "$work"' EXIT
fi

debs=()
for n in a b; do
    # Different path lengths on purpose: a path that leaks shows as a diff.
    src=$work/src-$n
    [ "$n" = a ] || src=$src-at-a-longer-path
    mkdir -p "$src"
    git -C "$repo" archive "$commit" | tar -x -C "$src"
    say "build $n of $commit in $src (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
    start=$(date +%s)
    deb=$(env -u CARGO_TARGET_DIR bash "$src/packaging/build-deb.sh" | tail -n 1)
    say "build $n: $(($(date +%s) - start)) s"
    debs+=("$deb")
done

sha256sum "${debs[@]}"
if cmp -s "${debs[0]}" "${debs[1]}"; then
    say "identical: $(sha256sum <"${debs[0]}" | cut -d' ' -f1)"
else
    say "DIFFERENT; file lists and digests follow"
    for d in "${debs[@]}"; do
        echo "== $d"
        dpkg-deb -c "$d"
        dpkg-deb --ctrl-tarfile "$d" | tar -xO ./md5sums
    done
    exit 1
fi
