//! `vaultd`: parse flags, harden the process, build the runtime, serve.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use vaultd::{Args, Config, SoleInstance, State};

fn main() -> ExitCode {
    // Before anything secret exists: no core dumps, no ptrace by our uid.
    let harden = vaultd::harden_process();
    init_logging();
    if let Err(e) = harden {
        tracing::warn!("process hardening incomplete: {e}");
    }
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("vaultd: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VAULTD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour codes in journald or a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn run(args: Args) -> Result<(), String> {
    // Socket activation: take the inherited descriptor before vaultd opens
    // any file (so fd 3 is what systemd passed) and before any thread
    // exists. The path stays what --socket/defaults say (for messages and
    // the vault lock); the socket file itself belongs to systemd and is
    // neither unlinked nor rebound.
    let inherited = vaultd::take_listen_fds().map_err(|e| e.to_string())?;
    let mut config = match &args.config {
        Some(p) => Config::load(p, true),
        None => match vaultd::default_config() {
            Some(p) => Config::load(&p, false),
            None => Ok(Config::default()),
        },
    }
    .map_err(|e| e.to_string())?;
    let socket = args
        .socket
        .or_else(|| {
            std::env::var_os("VAULTD_SOCKET")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .or_else(|| config.socket.clone())
        .or_else(vaultd::default_socket)
        .ok_or("no socket path: set XDG_RUNTIME_DIR or VAULTD_SOCKET, or pass --socket")?;
    let vault = args
        .vault
        .or_else(|| config.vault.clone())
        .or_else(vaultd::default_vault)
        .ok_or("no vault path: set HOME or XDG_DATA_HOME, or pass --vault")?;

    // The front's path, resolved once: `status` shows where it is served.
    if let Some(p) = args.http_socket {
        config.http_socket = vaultd::FrontSocket::from_path(p);
    }
    let front_is_default = config.http_socket == vaultd::FrontSocket::Default;
    let front_path = config.http_socket.resolve(&socket);
    // A front turned off still has a path to recognise an inherited
    // socket by (which is then closed).
    let front_match = front_path
        .clone()
        .or_else(|| vaultd::FrontSocket::Default.resolve(&socket));
    let inherited = inherited
        .sort(front_match.as_deref())
        .map_err(|e| e.to_string())?;
    config.http_socket = match &front_path {
        Some(p) => vaultd::FrontSocket::At(p.clone()),
        None => vaultd::FrontSocket::Off,
    };

    // Before the socket is bound: a refused second daemon must not replace
    // the first one's socket. Held until `run` returns.
    let _vault_lock = SoleInstance::acquire(&vault, &socket).map_err(|e| e.to_string())?;

    let key_source = vaultd::key_source(
        &config,
        std::env::var_os("CREDENTIALS_DIRECTORY")
            .map(PathBuf::from)
            .as_deref(),
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vaultd")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let result = runtime.block_on(async move {
        let front = match (inherited.front, &front_path) {
            (_, None) => None,
            (Some(fd), Some(p)) => {
                tracing::info!("http front on {} (socket activation)", p.display());
                Some(vaultd::listener_from_fd(fd).map_err(|e| {
                    format!("cannot use the http socket passed by systemd: {e}")
                })?)
            }
            (None, Some(p)) => match vaultd::bind(p) {
                Ok(l) => {
                    tracing::info!("http front on {}", p.display());
                    Some(l)
                }
                // The default path is a convenience: a daemon that cannot
                // bind it (an older unit whose sandbox makes the runtime
                // directory read-only, a file in the way) still serves
                // the main socket, and `status` says the front is off.
                Err(e) if front_is_default => {
                    tracing::warn!(
                        "http front off: {e} (set http_socket to a usable path, or to \"\" to silence this)"
                    );
                    config.http_socket = vaultd::FrontSocket::Off;
                    None
                }
                Err(e) => return Err(format!("http front: {e}")),
            },
        };
        let state = Arc::new(State::new(config, vault.clone()).map_err(|e| e.to_string())?);
        // Signal handlers before the socket answers: a client (or systemd)
        // may signal as soon as it can connect.
        spawn_lock_on_sigusr1(state.clone())?;
        let shutdown = shutdown_signal();
        let (listener, how) = match inherited.main {
            Some(fd) => (
                vaultd::listener_from_fd(fd)
                    .map_err(|e| format!("cannot use the socket passed by systemd: {e}"))?,
                "socket activation",
            ),
            None => (vaultd::bind(&socket).map_err(|e| e.to_string())?, "bound"),
        };
        tracing::info!(
            "vaultd {} listening on {} ({how}; vault {})",
            env!("CARGO_PKG_VERSION"),
            socket.display(),
            vault.display()
        );
        let (front_stop, front_stopped) = tokio::sync::watch::channel(false);
        if let Some(l) = front {
            let mut stopped = front_stopped.clone();
            tokio::spawn(vaultd::serve_front(l, state.clone(), async move {
                let _ = stopped.wait_for(|s| *s).await;
            }));
        }
        let unlocked = vaultd::auto_unlock(&state, key_source).await;
        vaultd::notify_ready(if unlocked {
            "serving (unlocked)"
        } else {
            "serving (locked)"
        });
        vaultd::serve(listener, state.clone(), async {
            shutdown.await;
            vaultd::notify_stopping();
        })
        .await;
        let _ = front_stop.send(true);
        state.lock();
        tracing::info!("vaultd stopped; keys dropped");
        Ok::<(), String>(())
    });
    // Connections still open are dropped here (their clients get an error);
    // a blocking task (a KDF run) gets a short grace period.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}

fn spawn_lock_on_sigusr1(state: Arc<State>) -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        while usr1.recv().await.is_some() {
            if state.lock() {
                tracing::info!("vault locked (SIGUSR1)");
            }
        }
    });
    Ok(())
}

/// Installs the SIGTERM/SIGINT handlers now (so a signal during start-up,
/// e.g. while unlocking, is not fatal but ends the serve loop at once) and
/// returns the future that completes on the first of them.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
    }
}
