#!/usr/bin/env bash
# tokenvault installer: build vaultd + vaultctl, install them with their
# systemd user units, completions and man pages, start the daemon and check
# that it answers.
#
#   ./install.sh              install (or upgrade; safe to run again)
#   ./install.sh --uninstall  remove what was installed; never the vault
#
# Where things go (all per user, no root needed):
#   binaries      $PREFIX/bin                  (PREFIX defaults to ~/.local)
#   user units    ${XDG_CONFIG_HOME:-~/.config}/systemd/user
#   completions   $PREFIX/share/{bash-completion/completions,zsh/site-functions,fish/vendor_completions.d}
#   man pages     $PREFIX/share/man/man1
#   install state ${XDG_STATE_HOME:-~/.local/state}/vaultd  (manifest, pid + log of a background daemon)
#
# Knobs (environment):
#   PREFIX=DIR                       install under DIR instead of ~/.local
#   VAULTCTL_BIN_SRC=DIR             take vaultd and vaultctl from DIR, no build
#                                    (e.g. target/debug; the tests use this)
#   TOKENVAULT_INSTALL_NO_BUILD=1    use the existing release binaries in
#                                    ${CARGO_TARGET_DIR:-target}/release, no build
#   TOKENVAULT_INSTALL_NO_SYSTEMD=1  never use the systemd user manager; run
#                                    vaultd in the background instead
#   CARGO_TARGET_DIR                 honoured by the build, as by cargo
set -euo pipefail

say() { printf 'install.sh: %s\n' "$*"; }
die() {
    printf 'install.sh: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

mode=install
for arg in "$@"; do
    case "$arg" in
    --uninstall) mode=uninstall ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown argument '$arg' (try --help)" ;;
    esac
done

repo=$(cd "$(dirname "$0")" && pwd)
[ -n "${HOME:-}" ] || die "HOME is not set"
prefix=${PREFIX:-$HOME/.local}
# Absolute (the unit's ExecStart= and the manifest need it), and plain: the
# path goes into a systemd unit, where spaces split and % is a specifier.
case $prefix in /*) ;; *) prefix=$(pwd)/$prefix ;; esac
case $prefix in
*[[:space:]%\\\|\&\"\'\$]*) die "PREFIX '$prefix' has a character a systemd unit cannot carry (space, %, \\, |, &, quotes, \$)" ;;
esac
bin_dir=$prefix/bin
share_dir=$prefix/share
unit_dir=${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user
state_dir=${XDG_STATE_HOME:-$HOME/.local/state}/vaultd
manifest=$state_dir/install-manifest
pid_file=$state_dir/vaultd.pid
log_file=$state_dir/vaultd.log
vault_hint=${XDG_DATA_HOME:-$HOME/.local/share}/vaultd/vault
units=(vaultd.socket vaultd.service)

if [ -n "${VAULTD_SOCKET:-}" ]; then
    socket=$VAULTD_SOCKET
elif [ -n "${XDG_RUNTIME_DIR:-}" ]; then
    socket=$XDG_RUNTIME_DIR/vaultd/vaultd.sock
else
    # No XDG_RUNTIME_DIR (a root shell in a container, su): vaultd and
    # vaultctl both fall back to /run/user/UID when it is the user's own
    # 0700 directory. Root may create it; others get it from logind.
    run_user=/run/user/$(id -u)
    if [ ! -d "$run_user" ] && [ "$(id -u)" = 0 ]; then
        mkdir -p -m 0700 "$run_user"
    fi
    if [ -d "$run_user" ] && [ -O "$run_user" ] && [ -z "$(find "$run_user" -maxdepth 0 -perm /077)" ]; then
        socket=$run_user/vaultd/vaultd.sock
    else
        socket=
    fi
fi

# True when a systemd user manager answers for this user.
have_user_manager() {
    [ "${TOKENVAULT_INSTALL_NO_SYSTEMD:-0}" = 1 ] && return 1
    command -v systemctl >/dev/null 2>&1 || return 1
    local state
    state=$(systemctl --user is-system-running 2>/dev/null || true)
    case "$state" in
    running | degraded | starting | initializing) return 0 ;;
    *) return 1 ;;
    esac
}

# True while PID runs (a zombie left for a non-reaping init counts as gone).
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# The pid of the background vaultd this script started, if it still runs.
background_pid() {
    [ -f "$pid_file" ] || return 1
    local pid
    pid=$(cat "$pid_file" 2>/dev/null || true)
    case "$pid" in '' | *[!0-9]*) return 1 ;; esac
    alive "$pid" || return 1
    # Only ever a vaultd: a stale pid file must not make us signal a stranger.
    case "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" in
    */vaultd | */vaultd" (deleted)") ;;
    *) return 1 ;;
    esac
    echo "$pid"
}

stop_background() {
    local pid
    if pid=$(background_pid); then
        say "stopping the background vaultd (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            say "vaultd (pid $pid) ignored SIGTERM for 10 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pid_file"
}

daemon_answers() {
    "$bin_dir/vaultctl" status >/dev/null 2>&1
}

uninstall() {
    if have_user_manager; then
        systemctl --user disable --now "${units[@]}" >/dev/null 2>&1 || true
    fi
    stop_background
    local removed=0 f
    if [ -f "$manifest" ]; then
        while IFS= read -r f; do
            [ -n "$f" ] || continue
            if [ -e "$f" ] || [ -L "$f" ]; then
                rm -f -- "$f"
                removed=$((removed + 1))
            fi
        done <"$manifest"
        rm -f "$manifest"
    fi
    # Also the fixed names, in case the manifest was lost.
    for f in "$bin_dir/vaultd" "$bin_dir/vaultctl" "$unit_dir/vaultd.socket" "$unit_dir/vaultd.service"; do
        if [ -e "$f" ]; then
            rm -f -- "$f"
            removed=$((removed + 1))
        fi
    done
    if have_user_manager; then
        systemctl --user daemon-reload || true
    fi
    rm -f "$log_file"
    rmdir "$state_dir" 2>/dev/null || true
    # Directories this script may have created, only if now empty.
    for d in bash-completion/completions bash-completion zsh/site-functions zsh \
        fish/vendor_completions.d fish man/man1 man doc/tokenvault doc; do
        rmdir "$share_dir/$d" 2>/dev/null || true
    done
    say "removed $removed installed files; the vault ($vault_hint) and its config are kept"
}

if [ "$mode" = uninstall ]; then
    uninstall
    exit 0
fi

# ---- 1. binaries ----------------------------------------------------------
if [ -n "${VAULTCTL_BIN_SRC:-}" ]; then
    src=$VAULTCTL_BIN_SRC
    say "using prebuilt binaries from $src (VAULTCTL_BIN_SRC)"
elif [ "${TOKENVAULT_INSTALL_NO_BUILD:-0}" = 1 ]; then
    src=${CARGO_TARGET_DIR:-$repo/target}/release
    say "using existing release binaries from $src (TOKENVAULT_INSTALL_NO_BUILD=1)"
else
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (https://rustup.rs) or set VAULTCTL_BIN_SRC"
    say "building release binaries (cargo build --release --locked; a few minutes the first time)"
    (cd "$repo" && cargo build --release --locked -p vaultd -p vaultctl)
    src=${CARGO_TARGET_DIR:-$repo/target}/release
fi
for b in vaultd vaultctl; do
    [ -x "$src/$b" ] || die "$src/$b not found or not executable"
done

mkdir -p "$bin_dir" "$unit_dir" "$state_dir"
chmod 0700 "$state_dir"
: >"$manifest.new"
changed=0

# install_file MODE SRC DEST: copies only when the content differs.
install_file() {
    local mode=$1 from=$2 to=$3
    mkdir -p "$(dirname "$to")"
    if ! cmp -s "$from" "$to" 2>/dev/null; then
        # Write next to the target and rename, so a running binary is
        # replaced, not overwritten in place.
        cp -- "$from" "$to.tmp.$$"
        chmod "$mode" "$to.tmp.$$"
        mv -f -- "$to.tmp.$$" "$to"
        changed=1
    fi
    printf '%s\n' "$to" >>"$manifest.new"
}

binaries_before=$changed
install_file 0755 "$src/vaultd" "$bin_dir/vaultd"
install_file 0755 "$src/vaultctl" "$bin_dir/vaultctl"
binaries_changed=$((changed - binaries_before))

# ---- 2. units ----------------------------------------------------------------
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for u in "${units[@]}"; do
    if [ "$bin_dir" = "$HOME/.local/bin" ]; then
        cp "$repo/systemd/$u" "$tmp/$u"
    else
        # The units name %h/.local/bin/vaultd; point them at $PREFIX.
        sed "s|^ExecStart=%h/.local/bin/vaultd|ExecStart=$bin_dir/vaultd|" "$repo/systemd/$u" >"$tmp/$u"
    fi
    install_file 0644 "$tmp/$u" "$unit_dir/$u"
done

# ---- 3. completions, man pages, README ------------------------------------
mkdir -p "$tmp/comp" "$tmp/man"
"$bin_dir/vaultctl" completions bash >"$tmp/comp/vaultctl.bash"
"$bin_dir/vaultctl" completions zsh >"$tmp/comp/_vaultctl"
"$bin_dir/vaultctl" completions fish >"$tmp/comp/vaultctl.fish"
install_file 0644 "$tmp/comp/vaultctl.bash" "$share_dir/bash-completion/completions/vaultctl"
install_file 0644 "$tmp/comp/_vaultctl" "$share_dir/zsh/site-functions/_vaultctl"
install_file 0644 "$tmp/comp/vaultctl.fish" "$share_dir/fish/vendor_completions.d/vaultctl.fish"
"$bin_dir/vaultctl" man "$tmp/man"
for page in "$tmp"/man/*; do
    [ -f "$page" ] || continue
    install_file 0644 "$page" "$share_dir/man/man1/$(basename "$page")"
done
install_file 0644 "$repo/README.md" "$share_dir/doc/tokenvault/README.md"

# Files the previous install had and this one does not (e.g. a man page of
# a removed subcommand) go now; then the new manifest replaces the old.
if [ -f "$manifest" ]; then
    while IFS= read -r f; do
        [ -n "$f" ] || continue
        grep -qxF -- "$f" "$manifest.new" || rm -f -- "$f"
    done <"$manifest"
fi
mv -f "$manifest.new" "$manifest"
say "installed vaultd and vaultctl to $bin_dir, units to $unit_dir"

case ":$PATH:" in
*":$bin_dir:"*) ;;
*) say "note: $bin_dir is not on your PATH; add it (e.g. in ~/.profile): export PATH=\"$bin_dir:\$PATH\"" ;;
esac

# ---- 4. start ----------------------------------------------------------------
if have_user_manager; then
    # A daemon started by an earlier install without systemd would sit on
    # the socket path.
    stop_background
    systemctl --user daemon-reload
    systemctl --user enable --now vaultd.socket
    if [ "$binaries_changed" -gt 0 ]; then
        # Pick up the new binary if the old one is running.
        systemctl --user try-restart vaultd.service || true
    fi
    how="systemd user socket vaultd.socket (enabled; vaultd starts on the first request)"
else
    [ -n "$socket" ] || die "XDG_RUNTIME_DIR is not set and /run/user/$(id -u) is not yours, so vaultd and vaultctl have no default socket: export VAULTD_SOCKET=PATH (in your shell profile too) and run again"
    if pid=$(background_pid); then
        if [ "$binaries_changed" -gt 0 ]; then
            say "restarting the background vaultd (pid $pid) with the new binary; unlock it again afterwards"
            stop_background
        else
            say "vaultd already runs in the background (pid $pid)"
        fi
    fi
    if ! background_pid >/dev/null; then
        if daemon_answers; then
            say "a vaultd not started by this script already answers on $socket; leaving it alone"
        else
            command -v nohup >/dev/null 2>&1 || die "nohup not found"
            # setsid: the daemon outlives this terminal's session.
            runner=(nohup)
            command -v setsid >/dev/null 2>&1 && runner+=(setsid)
            "${runner[@]}" "$bin_dir/vaultd" >>"$log_file" 2>&1 </dev/null &
            echo $! >"$pid_file"
            say "no systemd user manager here: started vaultd in the background (pid $!, log $log_file)"
            say "it does not start again after a reboot; run ./install.sh again (or \`vaultd &\`) then"
        fi
    fi
    how="background vaultd (pid file $pid_file, log $log_file)"
fi

# ---- 5. check ----------------------------------------------------------------
ok=0
for _ in $(seq 1 100); do
    if daemon_answers; then
        ok=1
        break
    fi
    sleep 0.1
done
if [ "$ok" != 1 ]; then
    "$bin_dir/vaultctl" status || true
    if [ "$how" = "${how#background}" ]; then
        systemctl --user --no-pager status vaultd.socket vaultd.service >&2 || true
        say "logs: journalctl --user -u vaultd.service" >&2
    elif [ -f "$log_file" ]; then
        tail -n 5 "$log_file" >&2
    fi
    die "vaultd does not answer${socket:+ on $socket}; see the messages above"
fi
say "vaultd answers: $how"
"$bin_dir/vaultctl" status | sed 's/^/    /'

cat <<EOF

Next steps:
  vaultctl init                                  # create the vault (asks for a passphrase twice)
  vaultctl add microreact --preset microreact    # paste the token (no echo), or --from-env VAR
  vaultctl request microreact https://microreact.org/api/... -o out.json
  vaultctl --help                                # everything else; man vaultctl

Unattended unlock (systemd credential): see README, "Unattended unlock".
Uninstall: ./install.sh --uninstall  (keeps the vault at $vault_hint)
EOF
