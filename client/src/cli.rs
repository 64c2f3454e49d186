//! The command line, as DESIGN.md's CLI contract spells it.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  vaultctl init
  vaultctl add microreact --preset microreact < token.txt
  vaultctl request microreact https://microreact.org/api/projects/create -d @project.json
  vaultctl add ap --preset access-protocol --from-env AP_TOKEN
  vaultctl request ap https://go-api.accessprotocol.co/user -f

Exit codes: 0 ok, 1 usage or local error, 2 daemon not reachable, 3 vault locked,
4 no such credential, 5 refused by policy, 6 upstream unreachable/TLS/timeout,
22 HTTP error with -f.";

/// Use long-lived API tokens from scripts without ever seeing them: vaultd
/// keeps them encrypted and performs the HTTP request for you.
#[derive(Parser, Debug)]
#[command(name = "vaultctl", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// vaultd's socket [default: $VAULTD_SOCKET, else $XDG_RUNTIME_DIR/vaultd/vaultd.sock]
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Daemon version, locked or unlocked, number of credentials, uptime.
    Status {
        /// Print a JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Create an empty vault protected by a new passphrase, left unlocked.
    Init {
        /// Read the passphrase from the first line of stdin.
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Unlock the vault with its passphrase or a key file.
    Unlock {
        /// Read the passphrase from the first line of stdin.
        #[arg(long, conflicts_with = "keyfile")]
        passphrase_stdin: bool,
        /// Unlock with a key file made by `vaultctl keyfile create`.
        #[arg(long, value_name = "PATH")]
        keyfile: Option<PathBuf>,
    },
    /// Drop every key and token from the daemon's memory.
    Lock,
    /// Change the passphrase (stdin: the old one, then the new one).
    Passwd {
        /// Read the old and new passphrases from two lines of stdin.
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Store a token. The value comes from stdin or --from-env, never argv.
    #[command(after_help = "Example:\n  vaultctl add microreact --preset microreact < token.txt")]
    Add(AddArgs),
    /// Replace a credential's token value, keeping its policy.
    Rotate {
        name: String,
        /// Read the value from this environment variable instead of stdin.
        #[arg(long, value_name = "VAR")]
        from_env: Option<String>,
    },
    /// Delete a credential.
    Remove { name: String },
    /// Names, injection, origins and usage of each credential; never a value.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Key files for unattended unlock.
    Keyfile {
        #[command(subcommand)]
        command: KeyfileCommand,
    },
    /// Perform an HTTP request with credential NAME attached (curl-like flags).
    #[command(
        after_help = "Example:\n  vaultctl request microreact https://microreact.org/api/projects/create -d @project.json"
    )]
    Request(RequestArgs),
    /// Write an encrypted copy of the vault to FILE (0600; never overwrites).
    #[command(
        after_help = "The copy is the vault file itself, still encrypted: restore it by stopping\nvaultd, copying it to the vault path and unlocking with the passphrase that\nwas valid when the backup was made (see docs/backup.md).\n\nExample:\n  vaultctl backup ~/vault-$(date +%F).bak"
    )]
    Backup { file: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum KeyfileCommand {
    /// Write a fresh random 32-byte key to PATH (0600) and add a key-file slot.
    Create {
        path: PathBuf,
        /// Read the vault passphrase (needed to add a slot) from stdin.
        #[arg(long)]
        passphrase_stdin: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Preset {
    /// Header `Access-Token`, origin https://microreact.org
    Microreact,
    /// Bearer token, origin https://go-api.accessprotocol.co
    AccessProtocol,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("injection").required(true).args(["preset", "header", "bearer"])))]
pub struct AddArgs {
    pub name: String,
    /// A known service: sets the header and the origin.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Send the token in this header, e.g. `Access-Token`.
    #[arg(long, value_name = "NAME")]
    pub header: Option<String>,
    /// Send the token as `Authorization: Bearer <token>`.
    #[arg(long)]
    pub bearer: bool,
    /// An origin the token may be sent to, `scheme://host[:port]`; repeatable.
    /// Replaces a preset's origin.
    #[arg(long = "origin", value_name = "ORIGIN")]
    pub origins: Vec<String>,
    /// Read the token from this environment variable instead of stdin.
    #[arg(long, value_name = "VAR")]
    pub from_env: Option<String>,
    /// Allow plain-http origins that are not loopback.
    #[arg(long)]
    pub allow_insecure_http: bool,
    /// Only allow these methods; repeatable.
    #[arg(long = "method", value_name = "METHOD")]
    pub methods: Vec<String>,
    /// Only allow paths under these prefixes; repeatable.
    #[arg(long = "path-prefix", value_name = "PREFIX")]
    pub path_prefixes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RequestArgs {
    /// The credential to attach.
    pub name: String,
    pub url: String,
    /// Method [default: GET, or POST with -d].
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<String>,
    /// Extra header `Name: value`; repeatable.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Body, sent byte-exact: DATA, @FILE, or @- for stdin.
    #[arg(short = 'd', long = "data", alias = "data-binary", value_name = "DATA")]
    pub data: Option<String>,
    /// Write the body to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print the status line and headers before the body.
    #[arg(short = 'i', long = "include")]
    pub include: bool,
    /// On HTTP >= 400: no body, exit 22.
    #[arg(short = 'f', long = "fail")]
    pub fail: bool,
    /// Follow redirects within the same origin.
    #[arg(short = 'L', long = "location")]
    pub location: bool,
    /// Give up after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub max_time: Option<f64>,
    /// Print `{status, headers, body}` as JSON.
    #[arg(long)]
    pub json: bool,
    /// Accepted for curl compatibility (vaultctl prints no progress).
    #[arg(short = 's', long = "silent")]
    pub silent: bool,
}
