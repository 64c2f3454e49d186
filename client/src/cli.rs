//! The command line, as DESIGN.md's CLI contract spells it.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

/// Lifetime of a new signing credential's signatures unless `--sig-ttl`
/// says otherwise: long enough for clock skew and slow uploads, short
/// enough that a signature captured from an echo is soon worthless.
pub const DEFAULT_SIG_TTL: u64 = 300;

const EXAMPLES: &str = "\
Examples:
  vaultctl init
  vaultctl add microreact --preset microreact < token.txt
  vaultctl request microreact https://microreact.org/api/projects/create -d @project.json
  vaultctl add ap --preset access-protocol --from-env AP_TOKEN
  vaultctl request ap https://go-api.accessprotocol.co/user -f

Exit codes: 0 ok, 1 usage or local error, 2 daemon not reachable, 3 vault locked,
4 no such credential, 5 refused by policy, 6 upstream unreachable/TLS/timeout,
7 credential source (OpenBao) unreachable past max_stale or refused,
8 scan found stored values in files, 22 HTTP error with -f.";

/// Use long-lived API tokens from scripts without ever seeing them: vaultd
/// keeps them encrypted and performs the HTTP request for you.
#[derive(Parser, Debug)]
#[command(name = "vaultctl", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// vaultd's socket [default: $VAULTD_SOCKET, else $XDG_RUNTIME_DIR/vaultd/vaultd.sock,
    /// else /run/user/UID/vaultd/vaultd.sock]
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

// One value per process, parsed once: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Daemon version, locked or unlocked, number of credentials, uptime.
    #[command(after_help = "Example:\n  vaultctl status --json")]
    Status {
        /// Print a JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Create an empty vault protected by a new passphrase, left unlocked.
    #[command(after_help = "Example:\n  vaultctl init")]
    Init {
        /// Read the passphrase from the first line of stdin.
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Unlock the vault with its passphrase or a key file.
    #[command(
        after_help = "Example:\n  vaultctl unlock\n  vaultctl unlock --keyfile ~/.config/vaultd/vaultd.key"
    )]
    Unlock {
        /// Read the passphrase from the first line of stdin.
        #[arg(long, conflicts_with = "keyfile")]
        passphrase_stdin: bool,
        /// Unlock with a key file made by `vaultctl keyfile create`.
        #[arg(long, value_name = "PATH")]
        keyfile: Option<PathBuf>,
    },
    /// Drop every key and token from the daemon's memory.
    #[command(after_help = "Example:\n  vaultctl lock")]
    Lock,
    /// Change the passphrase (stdin: the old one, then the new one).
    #[command(after_help = "Example:\n  vaultctl passwd")]
    Passwd {
        /// Read the old and new passphrases from two lines of stdin.
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Store a token. The value comes from stdin or --from-env, never argv.
    #[command(after_help = "Example:\n  vaultctl add microreact --preset microreact < token.txt")]
    Add(AddArgs),
    /// Replace a credential's token value, keeping its policy.
    #[command(after_help = "Example:\n  vaultctl rotate microreact < new-token.txt")]
    Rotate {
        name: String,
        /// Read the value from this environment variable instead of stdin.
        #[arg(long, value_name = "VAR")]
        from_env: Option<String>,
    },
    /// Delete a credential.
    #[command(after_help = "Example:\n  vaultctl remove microreact")]
    Remove { name: String },
    /// Names, injection, origins and usage of each credential; never a value.
    #[command(after_help = "Example:\n  vaultctl list --json")]
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Key files for unattended unlock.
    #[command(after_help = "Example:\n  vaultctl keyfile create ~/.config/vaultd/vaultd.key")]
    Keyfile {
        #[command(subcommand)]
        command: KeyfileCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Example:\n  vaultctl completions bash > ~/.local/share/bash-completion/completions/vaultctl"
    )]
    Completions { shell: clap_complete::Shell },
    /// Write man pages (vaultctl.1 and one per subcommand) into DIR.
    #[command(hide = true)]
    Man { dir: PathBuf },
    /// Perform an HTTP request with credential NAME attached (curl-like flags).
    #[command(
        after_help = "Flags are curl's, with curl's meaning (README \"curl compatibility\"): a curl\nscript becomes a vaultctl script by changing one word.\n\nExamples:\n  vaultctl request microreact https://microreact.org/api/projects/create --json @project.json\n  vaultctl request ap https://go-api.accessprotocol.co/user -sS -f --retry 3 -w '%{http_code}\\n'\n  vaultctl request api https://api.example.org/upload -F file=@report.pdf -v\n  vaultctl request ap https://go-api.accessprotocol.co/user --print json | jq .status"
    )]
    Request(RequestArgs),
    /// Print the Ed25519 public key of signing credential NAME (PEM, then JWK),
    /// to register with the upstream.
    #[command(after_help = "Example:\n  vaultctl pubkey api > api-key.pem")]
    Pubkey { name: String },
    /// Say what `request` would do (allowed, or the rule that refuses; the
    /// headers the daemon would add, never a value) without sending anything.
    /// Exit 0 when allowed, 5 when refused.
    #[command(
        after_help = "Example:\n  vaultctl explain microreact https://microreact.org/api/projects -X POST"
    )]
    Explain(ExplainArgs),
    /// OpenBao (or HashiCorp Vault) as the source of credentials' values.
    #[command(
        after_help = "Example:\n  vaultctl openbao login --approle 6f1c...-role-id < secret-id.txt\n  vaultctl openbao status"
    )]
    Openbao {
        #[command(subcommand)]
        command: OpenbaoCommand,
    },
    /// Re-read OpenBao-sourced values now: credential NAME, or all of them.
    #[command(after_help = "Example:\n  vaultctl refresh microreact")]
    Refresh { name: Option<String> },
    /// Write an encrypted copy of the vault to FILE (0600; never overwrites).
    #[command(
        after_help = "The copy is the vault file itself, still encrypted: restore it by stopping\nvaultd, copying it to the vault path and unlocking with the passphrase that\nwas valid when the backup was made (see docs/backup.md).\n\nExample:\n  vaultctl backup ~/vault-$(date +%F).bak"
    )]
    Backup { file: PathBuf },
    /// Store many tokens at once from a dotenv, netrc or TOML/JSON manifest
    /// file, in one save: all are added or none. Prints which lines of FILE
    /// still hold the tokens; it never edits FILE.
    #[command(after_help = IMPORT_HELP)]
    Import(ImportArgs),
    /// Find copies of stored values in plain files (raw, base64, percent,
    /// JSON escapes, ...). vaultd does the matching: vaultctl sends it the
    /// files and gets back `PATH:LINE: credential NAME (FORM)`, never a value.
    /// Exit 0 when nothing is found, 8 when something is.
    #[command(after_help = SCAN_HELP)]
    Scan(ScanArgs),
}

const IMPORT_HELP: &str = "\
Formats (detected, or named with --format):
  dotenv    KEY=value lines (`export`, quotes, # comments). Only keys named by
            --map are imported: KEY=NAME:PRESET, or KEY=NAME with --header or
            --bearer and --origin. Other keys are listed as skipped.
  netrc     machine HOST login L password P. Each password becomes credential
            HOST (or --map HOST=NAME) bound to https://HOST; choose --bearer or
            --header NAME.
  manifest  TOML [[credential]] tables or JSON {\"credential\": [...]}, fields:
            name, value or value_env, preset | header | bearer, origins,
            methods, path_prefixes, allow_insecure_http.

Examples:
  vaultctl import .env --map MICROREACT_TOKEN=microreact:microreact --dry-run
  vaultctl import ~/.netrc --bearer --map api.example.org=example
  vaultctl import tokens.toml --replace";

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportFormat {
    /// KEY=value lines.
    Dotenv,
    /// machine HOST login L password P.
    Netrc,
    /// TOML or JSON, one entry per credential.
    Manifest,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The file to read, or `-` for stdin.
    pub file: PathBuf,
    /// The file's format [default: detected from its name and content].
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
    /// dotenv: KEY=NAME:PRESET or KEY=NAME; netrc: HOST=NAME. Repeatable.
    #[arg(long = "map", value_name = "KEY=NAME[:PRESET]")]
    pub maps: Vec<String>,
    /// Send each token as `Authorization: Bearer <token>` (netrc, and
    /// dotenv keys mapped without a preset).
    #[arg(long, conflicts_with = "header")]
    pub bearer: bool,
    /// Send each token in this header (netrc, and dotenv keys mapped
    /// without a preset).
    #[arg(long, value_name = "NAME")]
    pub header: Option<String>,
    /// An origin for dotenv keys mapped without a preset (replaces a
    /// preset's origin); repeatable.
    #[arg(long = "origin", value_name = "ORIGIN")]
    pub origins: Vec<String>,
    /// Print what would be added (names, injection, origins; never a
    /// value) and send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Replace credentials that already exist; without it an existing name
    /// refuses the whole import.
    #[arg(long)]
    pub replace: bool,
}

const SCAN_HELP: &str = "\
Without PATH, scans the usual places: shell histories (~/.bash_history,
~/.zsh_history, ~/.local/share/fish/fish_history, ~/.*_history), shell rc and
profile files, ~/.netrc, everything under ~/.config, and `.env*` files and git
working trees under the current directory.

Symlinks are not followed out of the scanned tree; binary files (a NUL in the
first 8 KiB), FIFOs, devices and files over --max-size are skipped.

--redact rewrites each named file with every copy replaced by
<tokenvault:NAME>: atomically (temporary file, fsync, rename), keeping mode and
owner, and refused for a file that changed during the scan. No backup copy is
written. Exit 0 then means no copy is left in those files.

Examples:
  vaultctl scan
  vaultctl scan ~/projects --max-depth 3 --json
  vaultctl scan --redact ~/.bash_history .env";

#[derive(Subcommand, Debug)]
pub enum KeyfileCommand {
    /// Write a fresh random 32-byte key to PATH (0600) and add a key-file slot.
    #[command(after_help = "Example:\n  vaultctl keyfile create ~/.config/vaultd/vaultd.key")]
    Create {
        path: PathBuf,
        /// Read the vault passphrase (needed to add a slot) from stdin.
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Remove the key-file slot and re-key the vault, so the old key file
    /// opens nothing saved from now on (delete the file too).
    #[command(after_help = "Example:\n  vaultctl keyfile remove")]
    Remove {
        /// Read the vault passphrase (the passphrase slot is re-wrapped) from stdin.
        #[arg(long)]
        passphrase_stdin: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum OpenbaoCommand {
    /// Store how vaultd logs in to OpenBao (checked first): AppRole with
    /// ROLE_ID and a secret_id from stdin or --from-env, or a token.
    #[command(group(ArgGroup::new("method").required(true).args(["approle", "token"])))]
    Login {
        /// AppRole login with this role_id; the secret_id comes from stdin
        /// (no echo on a TTY) or --from-env, never argv.
        #[arg(long, value_name = "ROLE_ID")]
        approle: Option<String>,
        /// Token login: the token comes from stdin or --from-env.
        #[arg(long)]
        token: bool,
        /// Read the secret_id or token from this environment variable.
        #[arg(long, value_name = "VAR")]
        from_env: Option<String>,
    },
    /// The node in use, whether vaultd is logged in, the token's remaining
    /// TTL and the last error; never a value.
    Status {
        /// Print a JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Preset {
    /// Header `Access-Token`, origin https://microreact.org
    Microreact,
    /// Bearer token, origin https://go-api.accessprotocol.co
    AccessProtocol,
}

impl Preset {
    /// How the token is sent and where to, as DESIGN.md defines each
    /// preset; one table for `add` and `import`.
    pub fn injection_and_origin(self) -> (proto::Injection, &'static str) {
        match self {
            Preset::Microreact => (
                proto::Injection::Header {
                    name: "Access-Token".into(),
                },
                "https://microreact.org",
            ),
            Preset::AccessProtocol => {
                (proto::Injection::Bearer, "https://go-api.accessprotocol.co")
            }
        }
    }
}

/// RFC 9421 signature algorithms (`--sign`).
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum SignAlg {
    /// HMAC-SHA256 with a secret shared with the upstream (import it with --import).
    #[value(name = "hmac-sha256")]
    HmacSha256,
    /// Ed25519: the daemon generates the key (or --import); the upstream gets `vaultctl pubkey`.
    Ed25519,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("injection").required(true).args(["preset", "header", "bearer", "sign"])))]
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
    /// Take the value from OpenBao KV v2 (`[openbao]` in vaultd's config):
    /// field FIELD of the secret at PATH under the mount, e.g.
    /// team/microreact#token. No value is read or stored locally.
    #[arg(long, value_name = "PATH#FIELD", conflicts_with_all = ["from_env", "import"])]
    pub from_openbao: Option<String>,
    /// With --from-openbao: read the vault passphrase (asked otherwise)
    /// from the first line of stdin.
    #[arg(long, requires = "from_openbao")]
    pub passphrase_stdin: bool,
    /// Allow plain-http origins that are not loopback.
    #[arg(long)]
    pub allow_insecure_http: bool,
    /// Only allow these methods; repeatable.
    #[arg(long = "method", value_name = "METHOD")]
    pub methods: Vec<String>,
    /// Only allow paths under these prefixes; repeatable.
    #[arg(long = "path-prefix", value_name = "PREFIX")]
    pub path_prefixes: Vec<String>,
    /// Sign each request (RFC 9421 HTTP Message Signatures) instead of
    /// sending a token. The key never leaves the daemon.
    #[arg(long, value_enum, value_name = "ALG")]
    pub sign: Option<SignAlg>,
    /// The `keyid` signature parameter.
    #[arg(long, value_name = "ID", requires = "sign")]
    pub keyid: Option<String>,
    /// Signatures expire this many seconds after they are made (default
    /// 300: a signature read back through an echo endpoint can be replayed
    /// until it expires). 0 = never expires; say so only for a verifier
    /// that rejects replays by other means.
    #[arg(long, value_name = "SECS", requires = "sign", default_value_t = DEFAULT_SIG_TTL)]
    pub sig_ttl: u64,
    /// A covered component (`@method`, `@target-uri`, `@authority`, `@path`,
    /// `@query`, `@scheme`, `@request-target`, `content-digest`, or a header
    /// name); repeatable, replaces the default set.
    #[arg(long = "cover", value_name = "COMPONENT", requires = "sign")]
    pub cover: Vec<String>,
    /// Import the key instead of generating one: stdin (byte-exact) or
    /// --from-env. hmac-sha256: the raw secret bytes; ed25519: PKCS#8 (DER
    /// or PEM) or the 32-byte seed.
    #[arg(long, requires = "sign")]
    pub import: bool,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The credential the request would use.
    pub name: String,
    pub url: String,
    /// Method [default: GET, or POST with -d].
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<String>,
    /// Extra header `Name: value`, as for `request`; repeatable.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// A body, as for `request` (it decides whether a digest is added).
    #[arg(short = 'd', long = "data", alias = "data-binary", value_name = "DATA")]
    pub data: Option<String>,
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How `request` prints the response besides curl's own ways.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrintAs {
    /// `{status, http_version, url, headers, body}` as one JSON object
    /// (docs/json.md).
    Json,
}

/// `request`'s flags: curl's, with curl's meaning (README "curl
/// compatibility"), so a script moves over by changing one word. Repeatable
/// body flags keep their command-line order through clap's indices (see
/// [`RequestArgs::order_from`]).
#[derive(Args, Debug)]
pub struct RequestArgs {
    /// The credential to attach.
    pub name: String,
    /// The URL (or give it with --url).
    #[arg(required_unless_present = "url_flag", conflicts_with = "url_flag")]
    pub url: Option<String>,
    /// The URL, as curl's `--url` (one URL: a job is one request).
    #[arg(long = "url", id = "url_flag", value_name = "URL")]
    pub url_flag: Option<String>,
    /// Method [default: GET, or POST with a body, PUT with -T, HEAD with -I].
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<String>,
    /// Extra header `Name: value`, or @FILE of such lines; repeatable.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Body: DATA, @FILE or @- (stdin), sent byte-exact (as
    /// --data-binary); repeatable, joined with `&`.
    #[arg(short = 'd', long = "data", alias = "data-ascii", value_name = "DATA")]
    pub data: Vec<String>,
    /// Body sent byte-exact: DATA, @FILE or @-; repeatable, joined with `&`.
    #[arg(long = "data-binary", value_name = "DATA")]
    pub data_binary: Vec<String>,
    /// Body sent as given, `@` included; repeatable, joined with `&`.
    #[arg(long = "data-raw", value_name = "DATA")]
    pub data_raw: Vec<String>,
    /// URL-encoded body part: `content`, `=content`, `name=content`,
    /// `@file` or `name@file`; repeatable, joined with `&`.
    #[arg(long = "data-urlencode", value_name = "DATA")]
    pub data_urlencode: Vec<String>,
    /// JSON body: DATA, @FILE or @-; repeatable (concatenated). Sets
    /// `Content-Type` and `Accept` to application/json; POST unless -X.
    #[arg(long = "json", value_name = "DATA")]
    pub json: Vec<String>,
    /// Send the -d/--data-urlencode data in the URL's query with GET.
    #[arg(short = 'G', long = "get")]
    pub get: bool,
    /// Add to the URL's query: `+content` as is, else as --data-urlencode
    /// forms; repeatable.
    #[arg(long = "url-query", value_name = "DATA")]
    pub url_query: Vec<String>,
    /// Multipart form field: `name=value`, `name=@file[;type=T][;filename=F]`
    /// or `name=<file`; repeatable. Files are streamed.
    #[arg(short = 'F', long = "form", value_name = "NAME=CONTENT")]
    pub form: Vec<String>,
    /// A multipart form field taken literally (no `@` or `<`); repeatable.
    #[arg(long = "form-string", value_name = "NAME=STRING")]
    pub form_string: Vec<String>,
    /// PUT FILE (or - for stdin) as the body, streamed.
    #[arg(short = 'T', long = "upload-file", value_name = "FILE")]
    pub upload_file: Option<PathBuf>,
    /// HEAD request; print the response headers.
    #[arg(short = 'I', long = "head")]
    pub head: bool,
    /// Write the body to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write the body to a file named as the URL's last path segment.
    #[arg(short = 'O', long = "remote-name", conflicts_with = "output")]
    pub remote_name: bool,
    /// Write the status line and headers to FILE (`-` for stdout).
    #[arg(short = 'D', long = "dump-header", value_name = "FILE")]
    pub dump_header: Option<PathBuf>,
    /// `User-Agent` header (a -H one wins).
    #[arg(short = 'A', long = "user-agent", value_name = "NAME")]
    pub user_agent: Option<String>,
    /// `Referer` header (a -H one wins).
    #[arg(short = 'e', long = "referer", value_name = "URL")]
    pub referer: Option<String>,
    /// Print the status line and headers before the body.
    #[arg(short = 'i', long = "include")]
    pub include: bool,
    /// On HTTP >= 400: no body, exit 22.
    #[arg(short = 'f', long = "fail", conflicts_with = "fail_with_body")]
    pub fail: bool,
    /// On HTTP >= 400: print the body, then exit 22.
    #[arg(long = "fail-with-body")]
    pub fail_with_body: bool,
    /// Follow redirects within the same origin.
    #[arg(short = 'L', long = "location")]
    pub location: bool,
    /// Give up after this many seconds.
    #[arg(short = 'm', long = "max-time", value_name = "SECS")]
    pub max_time: Option<f64>,
    /// Ask for a compressed response. vaultd always asks for and decodes
    /// gzip, deflate, br and zstd (it must see the plain body to redact
    /// it), so this only says what curl needs said.
    #[arg(long)]
    pub compressed: bool,
    /// After the transfer, print FORMAT with `%{variable}`s (curl's
    /// `-w`), or @FILE holding it.
    #[arg(short = 'w', long = "write-out", value_name = "FORMAT")]
    pub write_out: Option<String>,
    /// Print the response another way instead of the body: `json`.
    #[arg(long = "print", value_enum, value_name = "FORMAT")]
    pub print: Option<PrintAs>,
    /// No progress bar and no error message (as curl -s).
    #[arg(short = 's', long = "silent", conflicts_with = "progress")]
    pub silent: bool,
    /// Print the request as vaultd sent it (`> `) and the response head
    /// (`< `) on stderr; the credential shows as `<credential NAME>`.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// With -s, still print the error message.
    #[arg(short = 'S', long = "show-error")]
    pub show_error: bool,
    /// Show a progress bar even when stderr is not a terminal.
    #[arg(long, visible_alias = "progress-bar", short = '#')]
    pub progress: bool,
    /// Write each piece of the body as it arrives (no output buffering).
    #[arg(short = 'N', long = "no-buffer")]
    pub no_buffer: bool,
    /// Create the directories -o names.
    #[arg(long)]
    pub create_dirs: bool,

    /// Retry a transient failure (timeout, HTTP 408, 429, 500, 502, 503,
    /// 504) up to N times.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retry: u32,
    /// Wait this long between retries [default: 1 s, doubling, or the
    /// response's Retry-After].
    #[arg(long, value_name = "SECS")]
    pub retry_delay: Option<u64>,
    /// Retry only while this many seconds have passed since the first try.
    #[arg(long, value_name = "SECS")]
    pub retry_max_time: Option<u64>,
    /// With --retry, retry on any error.
    #[arg(long)]
    pub retry_all_errors: bool,
    /// With --retry, also retry when the connection is refused.
    #[arg(long)]
    pub retry_connrefused: bool,
    /// The body flags in command-line order (filled from clap's indices).
    #[arg(skip)]
    pub data_order: Vec<(DataKind, String)>,
    /// `-F` (false) and `--form-string` (true) fields in order.
    #[arg(skip)]
    pub form_order: Vec<(bool, String)>,
}

/// Which body flag a part came from: each reads its argument its own way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataKind {
    /// `-d`: as `--data-binary` (DESIGN.md), though curl drops CR and LF
    /// from `@FILE`.
    Ascii,
    /// `--data-binary`: byte-exact.
    Binary,
    /// `--data-raw`: no `@`.
    Raw,
    /// `--data-urlencode`.
    Urlencode,
    /// `--json`: concatenated, not joined with `&`.
    Json,
}

impl RequestArgs {
    /// Puts the repeatable body and form flags in command-line order, which
    /// the derived fields lose.
    pub fn order_from(&mut self, m: &clap::ArgMatches) {
        let mut parts: Vec<(usize, DataKind, String)> = Vec::new();
        for (id, kind) in [
            ("data", DataKind::Ascii),
            ("data_binary", DataKind::Binary),
            ("data_raw", DataKind::Raw),
            ("data_urlencode", DataKind::Urlencode),
            ("json", DataKind::Json),
        ] {
            if let (Some(idx), Some(vals)) = (m.indices_of(id), m.get_many::<String>(id)) {
                parts.extend(idx.zip(vals).map(|(i, v)| (i, kind, v.clone())));
            }
        }
        parts.sort_by_key(|p| p.0);
        self.data_order = parts.into_iter().map(|(_, k, v)| (k, v)).collect();
        let mut form: Vec<(usize, bool, String)> = Vec::new();
        for (id, literal) in [("form", false), ("form_string", true)] {
            if let (Some(idx), Some(vals)) = (m.indices_of(id), m.get_many::<String>(id)) {
                form.extend(idx.zip(vals).map(|(i, v)| (i, literal, v.clone())));
            }
        }
        form.sort_by_key(|p| p.0);
        self.form_order = form.into_iter().map(|(_, l, v)| (l, v)).collect();
    }
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Files or directories to scan [default: the usual places, see below].
    pub paths: Vec<PathBuf>,
    /// Rewrite the named files with every copy replaced by `<tokenvault:NAME>`
    /// (explicit paths only).
    #[arg(long, requires = "paths")]
    pub redact: bool,
    /// Print one JSON object (findings, skipped files, totals) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Descend at most this many directory levels below each PATH.
    #[arg(long, value_name = "N")]
    pub max_depth: Option<usize>,
    /// Skip files larger than this (bytes; K, M, G, KiB, MiB, GiB suffixes).
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub max_size: u64,
}

/// `64MiB`, `10M`, `4096`: a byte count.
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("unknown size unit in {s:?} (use K, M or G)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size too large: {s:?}"))
}
