#!/usr/bin/env bash
# `vaultctl scan` throughput: 1 GiB of text (16 files of 64 MiB, each under
# the default per-file cap) against 100 stored credentials, a few copies of
# some of them planted in the text. Prints one JSON line: wall time and
# MiB/s, the CPU time of each process (they run side by side, so on two idle
# cores the wall time is the larger of the two: `cpu_bound_mib_per_s`), the
# findings and vaultctl's exit code.
# Usage: bench/scan.sh BIN_DIR WORK_DIR   (run.sh calls it; runs alone too)
set -euo pipefail
bin=$1; w=$2
# The text lives in memory when it can (1 GiB on a full disk is a failure;
# the page cache serves either the same way).
data=$(mktemp -d "${SCAN_DATA_DIR:-/dev/shm}/tokenvault-scan.XXXXXX" 2>/dev/null || mktemp -d "$w/scan-data.XXXXXX")
sock=$w/scan.sock
${SCAN_WRAP:-} "$bin/vaultd" --socket "$sock" --vault "$w/vault-scan" --config /dev/null 2>"$w/scan.log" &
spid=$!
trap 'kill $spid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 100); do VAULTD_SOCKET=$sock "$bin/vaultctl" status >/dev/null 2>&1 && break; sleep 0.05; done
echo "bench passphrase" | VAULTD_SOCKET=$sock "$bin/vaultctl" init --passphrase-stdin 2>/dev/null
planted=()
for i in $(seq -w 1 100); do
    value="tok$i-$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')"
    if [ "$i" -le 3 ]; then planted+=("$value"); fi
    echo "$value" | VAULTD_SOCKET=$sock "$bin/vaultctl" add "cred$i" --preset microreact 2>/dev/null
done
# 16 MiB of shell-history-like text, then 64 MiB files from it; three
# planted values (raw, base64, percent-encoded) at the end of the first.
python3 - "$data/block" <<'PY'
import random, sys
random.seed(7)
words = ("git commit push pull cd ls grep export curl -H Authorization Bearer "
         "docker run --rm kubectl get pods make cargo build test echo cat less "
         "https://example.org/api/v1/items?page=2 && || > /tmp/out.json").split()
out, size = [], 0
while size < 16 << 20:
    line = " ".join(random.choice(words) for _ in range(random.randint(3, 14)))
    if random.random() < 0.2:
        line += f" ID={random.getrandbits(128):032x}"
    out.append(line); size += len(line) + 1
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY
for f in $(seq -w 1 16); do
    cat "$data/block" "$data/block" "$data/block" "$data/block" \
        | head -c $(((64 << 20) - 1024)) > "$data/f$f.txt"
done
rm "$data/block"
{
    echo "export TOKEN=${planted[0]}"
    echo "Authorization: Basic $(printf '%s' "${planted[1]}" | base64 -w0)"
    echo "https://example.org/?t=$(printf '%s' "${planted[2]}" | sed 's/-/%2D/g')"
} >> "$data/f01.txt"
unset planted value
total=$(du -cb "$data"/*.txt | tail -1 | cut -f1)
cpu() { awk '{print $14 + $15}' "/proc/$spid/stat"; }
c0=$(cpu)
t0=$(date +%s%N)
set +e
VAULTD_SOCKET=$sock /usr/bin/time -f '%U %S' -o "$w/scan.time" "$bin/vaultctl" scan "$data" > "$w/scan.out"
rc=$?
set -e
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
vaultd_cpu_ms=$(( ($(cpu) - c0) * 1000 / $(getconf CLK_TCK) ))
vaultctl_cpu_ms=$(tail -1 "$w/scan.time" | awk '{printf "%d", ($1 + $2) * 1000}')
python3 -c "import sys; mib=$total/1048576; ms=max($ms,1); print('{\"mib\": %.0f, \"ms\": %d, \"mib_per_s\": %.0f, \"vaultd_cpu_ms\": %d, \"vaultctl_cpu_ms\": %d, \"cpu_bound_mib_per_s\": %.0f, \"findings\": %d, \"exit\": %d}' % (mib, ms, mib*1000/ms, $vaultd_cpu_ms, $vaultctl_cpu_ms, mib*1000/max($vaultd_cpu_ms, $vaultctl_cpu_ms, 1), sum(1 for _ in open('$w/scan.out')), $rc))"
rm -rf "$data"
