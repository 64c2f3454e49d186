//! One function per subcommand: build the request, call the daemon, print.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use proto::{
    CredentialInfo, CredentialSpec, Header, Injection, JobRequest, JobResponse, OpenBaoLogin,
    OpenBaoStatus, Request, Response, Secret, SigAlg, Source, StatusInfo, VaultState,
};
use serde_json::json;
use vaultctl::{Client, socket_path};

use crate::cli::{AddArgs, Cli, Command, ExplainArgs, KeyfileCommand, OpenbaoCommand, SignAlg};
use crate::exit::Failure;
use crate::secret_input;

pub fn run(cli: Cli) -> Result<u8, Failure> {
    // Local commands: no socket needed.
    match &cli.command {
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "vaultctl", &mut std::io::stdout());
            return Ok(0);
        }
        Command::Man { dir } => return man_pages(dir),
        Command::Scan(a) if a.redact && a.paths.is_empty() => {
            return Err(Failure::usage(
                "scan --redact rewrites only files named on the command line",
            ));
        }
        _ => {}
    }
    let path = socket_path(cli.socket.as_deref()).ok_or_else(|| {
        Failure::usage("no socket path: set XDG_RUNTIME_DIR or VAULTD_SOCKET, or pass --socket")
    })?;
    let connect = || Client::connect(&path).map_err(Failure::from);
    // Commands that send a passphrase, key or token check who serves the
    // socket before writing anything (see `Client::connect_for_secret`).
    let connect_secret = || Client::connect_for_secret(&path).map_err(Failure::from);
    match cli.command {
        Command::Status { json } => status(connect()?, json),
        Command::Init { passphrase_stdin } => {
            let passphrase = if passphrase_stdin {
                one_line()?
            } else {
                secret_input::prompt("New passphrase", true)?
            };
            done(
                connect_secret()?,
                Request::Init { passphrase },
                "vault created and unlocked",
            )
        }
        Command::Unlock {
            passphrase_stdin,
            keyfile,
        } => {
            let req = match keyfile {
                Some(p) => Request::UnlockKeyfile {
                    key: read_keyfile(&p)?,
                },
                None => Request::Unlock {
                    passphrase: if passphrase_stdin {
                        one_line()?
                    } else {
                        secret_input::prompt("Passphrase", false)?
                    },
                },
            };
            done(connect_secret()?, req, "")
        }
        Command::Lock => done(connect()?, Request::Lock, ""),
        Command::Passwd { passphrase_stdin } => {
            let (old, new) = if passphrase_stdin {
                let mut v = secret_input::stdin_lines(2)?;
                let new = v.pop().unwrap_or_default();
                (v.pop().unwrap_or_default(), new)
            } else {
                (
                    secret_input::prompt("Current passphrase", false)?,
                    secret_input::prompt("New passphrase", true)?,
                )
            };
            done(
                connect_secret()?,
                Request::Passwd { old, new },
                "passphrase changed and the vault re-keyed (an old copy of the vault file and the old passphrase open nothing saved from now on); a key-file slot, if there was one, is removed: run `vaultctl keyfile create PATH` for a new key file",
            )
        }
        Command::Add(args) => add(connect_secret()?, args),
        Command::Rotate { name, from_env } => {
            let value = secret_input::token(from_env.as_deref(), &name)?;
            done(connect_secret()?, Request::Rotate { name, value }, "")
        }
        Command::Remove { name } => done(connect()?, Request::Remove { name }, ""),
        Command::List { json } => list(connect()?, json),
        Command::Keyfile {
            command:
                KeyfileCommand::Create {
                    path,
                    passphrase_stdin,
                },
        } => keyfile_create(connect_secret, &path, passphrase_stdin),
        Command::Keyfile {
            command: KeyfileCommand::Remove { passphrase_stdin },
        } => done(
            connect_secret()?,
            Request::RemoveKeyfile {
                passphrase: current_passphrase(passphrase_stdin)?,
            },
            "key-file slot removed and the vault re-keyed: the old key file opens nothing saved from now on; delete it",
        ),
        Command::Request(args) => crate::request::run(args, connect),
        Command::Pubkey { name } => pubkey(connect()?, name),
        Command::Explain(args) => explain(connect()?, args),
        Command::Completions { .. } | Command::Man { .. } => Ok(0),
        Command::Backup { file } => backup(connect()?, &file),
        Command::Openbao {
            command:
                OpenbaoCommand::Login {
                    approle,
                    token: _,
                    from_env,
                },
        } => {
            let login = match approle {
                Some(role_id) => OpenBaoLogin::AppRole {
                    role_id,
                    secret_id: secret_input::token(from_env.as_deref(), "the AppRole secret_id")?,
                },
                None => OpenBaoLogin::Token(secret_input::token(
                    from_env.as_deref(),
                    "the OpenBao token",
                )?),
            };
            done(
                connect_secret()?,
                Request::OpenBaoLogin(login),
                "logged in to OpenBao; the login is stored in the vault",
            )
        }
        Command::Openbao {
            command: OpenbaoCommand::Status { json },
        } => openbao_status(connect()?, json),
        Command::Refresh { name } => done(connect()?, Request::Refresh { name }, ""),
        Command::Import(args) => crate::import::run(args, connect_secret),
        Command::Scan(a) => crate::scan::run(connect()?, a),
    }
}

fn openbao_json(s: &OpenBaoStatus) -> serde_json::Value {
    json!({
        "configured": s.configured,
        "addrs": s.addrs,
        "node": s.node,
        "auth": s.auth,
        "has_login": s.has_login,
        "logged_in": s.logged_in,
        "token_ttl_secs": s.token_ttl_secs,
        "last_error": s.last_error,
    })
}

fn openbao_status(mut client: Client, as_json: bool) -> Result<u8, Failure> {
    let Response::OpenBaoStatus(s) = client.call(&Request::OpenBaoStatus)? else {
        return Err(unexpected());
    };
    if as_json {
        println!("{}", openbao_json(&s));
        return Ok(0);
    }
    if !s.configured {
        println!("openbao: not configured (no [openbao] table in vaultd's config.toml)");
        return Ok(0);
    }
    println!("openbao: auth {}, nodes {}", s.auth, s.addrs.join(", "));
    println!("node in use: {}", s.node.as_deref().unwrap_or("-"));
    let ttl = match s.token_ttl_secs {
        Some(t) => format!(
            " (token ttl {})",
            humantime::format_duration(Duration::from_secs(t))
        ),
        None => String::new(),
    };
    println!(
        "logged in: {}{ttl}",
        match (s.logged_in, s.has_login) {
            (true, _) => "yes",
            (false, true) => "not yet (a login is stored)",
            (false, false) => "no: run `vaultctl openbao login`",
        }
    );
    println!("last error: {}", s.last_error.as_deref().unwrap_or("-"));
    Ok(0)
}

/// `PATH#FIELD` of `--from-openbao`.
fn openbao_source(arg: Option<String>) -> Result<Option<Source>, Failure> {
    let Some(arg) = arg else {
        return Ok(None);
    };
    let Some((path, field)) = arg.rsplit_once('#') else {
        return Err(Failure::usage(
            "--from-openbao takes PATH#FIELD, e.g. team/microreact#token",
        ));
    };
    Ok(Some(Source::OpenBao {
        path: path.trim_matches('/').to_owned(),
        field: field.to_owned(),
    }))
}

/// `vaultctl.1` plus `vaultctl-SUB.1` for each visible subcommand.
fn man_pages(dir: &Path) -> Result<u8, Failure> {
    let fail = |e: std::io::Error| {
        Failure::usage(format!("cannot write man pages to {}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let cmd = <Cli as clap::CommandFactory>::command();
    clap_mangen::generate_to(cmd, dir).map_err(fail)?;
    Ok(0)
}

/// The vault's current passphrase, for the key-file commands (which
/// re-wrap the passphrase slot): one stdin line, or asked without echo.
fn current_passphrase(from_stdin: bool) -> Result<Secret, Failure> {
    if from_stdin {
        one_line()
    } else {
        secret_input::prompt("Passphrase", false)
    }
}

fn one_line() -> Result<Secret, Failure> {
    Ok(secret_input::stdin_lines(1)?.remove(0))
}

fn done(mut client: Client, req: Request, note: &str) -> Result<u8, Failure> {
    client.call(&req)?;
    if !note.is_empty() {
        eprintln!("vaultctl: {note}");
    }
    Ok(0)
}

fn status(mut client: Client, as_json: bool) -> Result<u8, Failure> {
    let Response::Status(s) = client.call(&Request::Status)? else {
        return Err(unexpected());
    };
    let StatusInfo {
        daemon_version,
        protocol,
        state,
        credentials,
        uptime_secs,
        pid,
        vault_path,
        openbao,
        http_socket,
    } = s;
    let state = match state {
        VaultState::Uninitialized => "uninitialized",
        VaultState::Locked => "locked",
        VaultState::Unlocked => "unlocked",
    };
    if as_json {
        let v = json!({
            "version": daemon_version,
            "protocol": protocol,
            "state": state,
            "credentials": credentials,
            "uptime_secs": uptime_secs,
            "pid": pid,
            "vault": vault_path,
            "openbao": openbao.as_ref().map(openbao_json),
            "http_socket": http_socket,
        });
        println!("{v}");
    } else {
        println!("vaultd {daemon_version} (protocol {protocol}), pid {pid}");
        match credentials {
            Some(n) => println!(
                "vault: {state}, {n} credential{} ({vault_path})",
                if n == 1 { "" } else { "s" }
            ),
            None => println!("vault: {state} ({vault_path})"),
        }
        println!(
            "uptime: {}",
            humantime::format_duration(Duration::from_secs(uptime_secs))
        );
        match &http_socket {
            Some(p) => println!("http front: {p}"),
            None => println!("http front: off"),
        }
        if let Some(o) = openbao {
            println!(
                "openbao: {}, node {}{}",
                if o.logged_in {
                    "logged in"
                } else {
                    "not logged in"
                },
                o.node.as_deref().unwrap_or("-"),
                o.last_error
                    .map(|e| format!(", last error: {e}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(0)
}

fn add(mut client: Client, a: AddArgs) -> Result<u8, Failure> {
    if let Some(alg) = a.sign {
        return add_signing(client, alg, a);
    }
    let (injection, preset_origin) = match (a.preset, a.header, a.bearer) {
        (Some(p), _, _) => {
            let (injection, origin) = p.injection_and_origin();
            (injection, Some(origin))
        }
        (None, Some(name), _) => (Injection::Header { name }, None),
        (None, None, true) => (Injection::Bearer, None),
        (None, None, false) => return Err(Failure::usage("choose --preset, --header or --bearer")),
    };
    let origins = if !a.origins.is_empty() {
        a.origins
    } else if let Some(o) = preset_origin {
        vec![o.to_owned()]
    } else {
        return Err(Failure::usage(
            "--header and --bearer need at least one --origin",
        ));
    };
    let source = openbao_source(a.from_openbao)?;
    let spec = CredentialSpec {
        injection: Some(injection),
        origins,
        allow_insecure_http: a.allow_insecure_http,
        methods: a.methods,
        path_prefixes: a.path_prefixes,
        source,
    };
    if spec.source.is_some() {
        return add_sourced(client, a.name, spec, a.passphrase_stdin);
    }
    let value = secret_input::token(a.from_env.as_deref(), &a.name)?;
    client.call(&Request::Add {
        name: a.name,
        spec,
        value,
    })?;
    Ok(0)
}

/// `add --sign`: the key is generated in the daemon, or imported byte-exact
/// (binary DER or a seed must not lose a trailing newline byte).
fn add_signing(mut client: Client, alg: SignAlg, a: AddArgs) -> Result<u8, Failure> {
    if a.origins.is_empty() {
        return Err(Failure::usage("--sign needs at least one --origin"));
    }
    if a.from_env.is_some() && !a.import {
        return Err(Failure::usage(
            "--from-env with --sign imports a key: add --import",
        ));
    }
    let alg = match alg {
        SignAlg::HmacSha256 => SigAlg::HmacSha256,
        SignAlg::Ed25519 => SigAlg::Ed25519,
    };
    let spec = CredentialSpec {
        injection: Some(Injection::Sign {
            alg,
            keyid: a.keyid,
            ttl_secs: (a.sig_ttl != 0).then_some(a.sig_ttl),
            components: a.cover,
        }),
        origins: a.origins,
        allow_insecure_http: a.allow_insecure_http,
        methods: a.methods,
        path_prefixes: a.path_prefixes,
        source: openbao_source(a.from_openbao)?,
    };
    if spec.source.is_some() {
        // The key lives in OpenBao (as --import would take it).
        return add_sourced(client, a.name, spec, a.passphrase_stdin);
    }
    if a.import {
        let value = secret_input::key_material(a.from_env.as_deref(), &a.name)?;
        client.call(&Request::Add {
            name: a.name,
            spec,
            value,
        })?;
        return Ok(0);
    }
    client.call(&Request::AddGenerated {
        name: a.name.clone(),
        spec,
    })?;
    eprintln!(
        "vaultctl: generated a new {} key for {}; register its public key with the upstream: vaultctl pubkey {}",
        alg.as_str(),
        a.name,
        a.name
    );
    Ok(0)
}

/// `add --from-openbao`: no value is read; the vault's passphrase is
/// (binding a fetchable value to origins is the owner's decision).
fn add_sourced(
    mut client: Client,
    name: String,
    spec: CredentialSpec,
    passphrase_stdin: bool,
) -> Result<u8, Failure> {
    let passphrase = current_passphrase(passphrase_stdin)?;
    client.call(&Request::AddSourced {
        name,
        spec,
        passphrase,
    })?;
    Ok(0)
}

pub(crate) fn injection_text(i: &Option<Injection>) -> String {
    match i {
        Some(Injection::Header { name }) => format!("header {name}"),
        Some(Injection::Bearer) => "bearer".into(),
        Some(Injection::Sign { alg, .. }) => format!("sign {}", alg.as_str()),
        None => "-".into(),
    }
}

fn time_text(secs: Option<u64>) -> String {
    secs.map_or_else(
        || "never".into(),
        |s| humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(s)).to_string(),
    )
}

fn list(mut client: Client, as_json: bool) -> Result<u8, Failure> {
    let Response::List(creds) = client.call(&Request::List)? else {
        return Err(unexpected());
    };
    if as_json {
        let v: Vec<_> = creds.iter().map(credential_json).collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(0);
    }
    let rows: Vec<[String; 7]> = creds
        .iter()
        .map(|c| {
            let origins = c
                .source_state
                .as_ref()
                .and_then(|s| s.effective_origins.as_ref())
                .unwrap_or(&c.spec.origins);
            [
                c.name.clone(),
                injection_text(&c.spec.injection),
                origins.join(","),
                time_text(Some(c.created)),
                time_text(c.last_used),
                c.use_count.to_string(),
                source_text(c),
            ]
        })
        .collect();
    let head = [
        "NAME",
        "INJECTION",
        "ORIGINS",
        "CREATED",
        "LAST USED",
        "USES",
        "SOURCE",
    ]
    .map(String::from);
    let mut widths = head.clone().map(|h| h.len());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = std::io::stdout().lock();
    for r in std::iter::once(&head).chain(&rows) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    Ok(0)
}

/// `vault`, or `openbao PATH#FIELD v3 12s ago` (with `error` when the
/// last read failed).
fn source_text(c: &CredentialInfo) -> String {
    let Some(Source::OpenBao { path, field }) = &c.spec.source else {
        return "vault".into();
    };
    let mut out = format!("openbao {path}#{field}");
    if let Some(s) = &c.source_state {
        match (s.version, s.age_secs) {
            (Some(v), Some(age)) => {
                out += &format!(
                    " v{v} {} ago",
                    humantime::format_duration(Duration::from_secs(age))
                )
            }
            _ => out += " (not read yet)",
        }
        if s.last_error.is_some() {
            out += " (last read failed: see list --json)";
        }
    }
    out
}

fn credential_json(c: &CredentialInfo) -> serde_json::Value {
    let (kind, header) = match &c.spec.injection {
        Some(Injection::Header { name }) => ("header", Some(name.clone())),
        Some(Injection::Bearer) => ("bearer", None),
        Some(Injection::Sign { .. }) => ("sign", None),
        None => ("none", None),
    };
    let mut v = json!({
        "name": c.name,
        "injection": kind,
        "header": header,
        "origins": c.spec.origins,
        "allow_insecure_http": c.spec.allow_insecure_http,
        "methods": c.spec.methods,
        "path_prefixes": c.spec.path_prefixes,
        "created": c.created,
        "last_used": c.last_used,
        "use_count": c.use_count,
        "source": source_json(c),
    });
    if let Some(Injection::Sign {
        alg,
        keyid,
        ttl_secs,
        components,
    }) = &c.spec.injection
    {
        v["alg"] = alg.as_str().into();
        v["keyid"] = json!(keyid);
        v["sig_ttl"] = json!(ttl_secs);
        v["covered"] = json!(components);
    }
    v
}

/// `null` for a value kept in the vault; see docs/json.md.
fn source_json(c: &CredentialInfo) -> serde_json::Value {
    let Some(Source::OpenBao { path, field }) = &c.spec.source else {
        return serde_json::Value::Null;
    };
    let st = c.source_state.as_ref();
    json!({
        "kind": "openbao",
        "path": path,
        "field": field,
        "version": st.and_then(|s| s.version),
        "age_secs": st.and_then(|s| s.age_secs),
        "last_error": st.and_then(|s| s.last_error.clone()),
        "effective_origins": st
            .and_then(|s| s.effective_origins.clone())
            .unwrap_or_else(|| c.spec.origins.clone()),
    })
}

fn read_keyfile(path: &Path) -> Result<Secret, Failure> {
    proto::local::read_keyfile(path)
        .map_err(|e| Failure::usage(format!("key file {}: {e}", path.display())))
}

fn keyfile_create(
    connect: impl Fn() -> Result<Client, Failure>,
    path: &Path,
    passphrase_stdin: bool,
) -> Result<u8, Failure> {
    use std::os::unix::fs::OpenOptionsExt;
    let passphrase = current_passphrase(passphrase_stdin)?;
    let mut client = connect()?;
    let mut key = zeroize::Zeroizing::new([0u8; proto::local::KEYFILE_LEN]);
    rustix::rand::getrandom(&mut key[..], rustix::rand::GetRandomFlags::empty())
        .map_err(|e| Failure::usage(format!("no randomness: {e}")))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Failure::usage(format!("cannot create {}: {e}", path.display())))?;
    let written = file.write_all(&key[..]).and_then(|_| file.sync_all());
    let result = written
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))
        .and_then(|_| {
            client
                .call(&Request::AddKeyfile {
                    passphrase,
                    key: Secret::from_slice(&key[..]),
                })
                .map_err(Failure::from)
        });
    if let Err(e) = result {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    eprintln!(
        "vaultctl: key file written to {}; unlock with `vaultctl unlock --keyfile {}`",
        path.display(),
        path.display()
    );
    Ok(0)
}

/// Writes the daemon's snapshot of the sealed vault to a new file: 0600,
/// `create_new` so an existing file (an older backup) is never replaced,
/// and fsynced, file and directory, before reporting success. A partial
/// file is removed on failure.
fn backup(mut client: Client, path: &Path) -> Result<u8, Failure> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Failure::usage(format!("cannot create {}: {e}", path.display())))?;
    let result = match client.call(&Request::Backup) {
        Ok(Response::Backup { sealed }) => file
            .write_all(&sealed)
            .and_then(|()| file.sync_all())
            .map(|()| sealed.len())
            .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display()))),
        Ok(_) => Err(unexpected()),
        Err(e) => Err(e.into()),
    };
    drop(file);
    let len = match result {
        Ok(len) => len,
        Err(e) => {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
    };
    // The new directory entry must be durable too. Best effort: some
    // filesystems cannot fsync a directory, and the data itself is synced.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    eprintln!(
        "vaultctl: encrypted backup ({len} bytes) written to {}",
        path.display()
    );
    Ok(0)
}

pub(crate) fn parse_header(h: &str) -> Result<Header, Failure> {
    let (name, value) = h
        .split_once(':')
        .ok_or_else(|| Failure::usage(format!("header {h:?} is not of the form 'Name: value'")))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(Failure::usage(format!("header {h:?} has no name")));
    }
    Ok(Header {
        name: name.to_owned(),
        value: value.trim_start().as_bytes().to_vec(),
    })
}

/// `-d` data: literal bytes, or a reader for `@FILE` / `@-` that is streamed
/// in chunks (any size).
enum Body {
    Inline(Vec<u8>),
    /// A reader (`@FILE`, `@-`).
    Stream(Box<dyn Read + Send>),
}

fn body_of(data: &str) -> Result<Body, Failure> {
    match data.strip_prefix('@') {
        Some("-") => Ok(Body::Stream(Box::new(std::io::stdin()))),
        Some(file) => std::fs::File::open(file)
            .map(|f| Body::Stream(Box::new(f)))
            .map_err(|e| Failure::usage(format!("cannot read {file}: {e}"))),
        None => Ok(Body::Inline(data.as_bytes().to_vec())),
    }
}

/// Method, headers and body of a job.
struct Parts {
    method: String,
    headers: Vec<Header>,
    body: Option<Body>,
}

/// Method, headers and body as curl would send them for `-X`, `-H`, `-d`.
fn curl_parts(
    method: Option<String>,
    headers: &[String],
    data: Option<&str>,
) -> Result<Parts, Failure> {
    let mut headers = headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<Result<Vec<_>, _>>()?;
    let body = data.map(body_of).transpose()?;
    if body.is_some()
        && !headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("content-type"))
    {
        // As curl -d does.
        headers.push(Header {
            name: "Content-Type".into(),
            value: b"application/x-www-form-urlencoded".to_vec(),
        });
    }
    let method = method.unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.into());
    Ok(Parts {
        method,
        headers,
        body,
    })
}

/// `{status, headers, body}`: headers as an object of lower-case names
/// (repeated headers joined with ", "); the body as text when it is UTF-8,
/// else as `body_base64`.
pub(crate) fn response_json(r: &JobResponse) -> serde_json::Value {
    let mut headers = serde_json::Map::new();
    for h in &r.headers {
        let v = String::from_utf8_lossy(&h.value).into_owned();
        headers
            .entry(h.name.to_ascii_lowercase())
            .and_modify(|e| {
                if let serde_json::Value::String(s) = e {
                    s.push_str(", ");
                    s.push_str(&v);
                }
            })
            .or_insert(serde_json::Value::String(v));
    }
    let mut obj = serde_json::Map::new();
    obj.insert("status".into(), r.status.into());
    obj.insert("http_version".into(), r.http_version.clone().into());
    obj.insert("url".into(), r.url.clone().into());
    obj.insert("headers".into(), headers.into());
    match std::str::from_utf8(&r.body) {
        Ok(s) => obj.insert("body".into(), s.into()),
        Err(_) => obj.insert(
            "body_base64".into(),
            base64::engine::general_purpose::STANDARD
                .encode(&r.body)
                .into(),
        ),
    };
    serde_json::Value::Object(obj)
}

/// PEM (SubjectPublicKeyInfo, RFC 8410) and JWK (RFC 8037), built here:
/// wrapping 32 public bytes needs no crypto.
fn pubkey(mut client: Client, name: String) -> Result<u8, Failure> {
    let Response::PublicKey(info) = client.call(&Request::PublicKey { name })? else {
        return Err(unexpected());
    };
    let raw: [u8; 32] = info
        .public_key
        .as_slice()
        .try_into()
        .map_err(|_| Failure::usage("vaultd sent a public key of the wrong length"))?;
    const SPKI_ED25519: [u8; 12] = [
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    let mut der = SPKI_ED25519.to_vec();
    der.extend_from_slice(&raw);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let kid = info
        .keyid
        .map(|k| format!(",\"kid\":{}", serde_json::Value::String(k)))
        .unwrap_or_default();
    println!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----");
    println!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}"{kid}}}"#);
    Ok(0)
}

fn explain(mut client: Client, a: ExplainArgs) -> Result<u8, Failure> {
    let Parts {
        method,
        headers,
        body,
    } = curl_parts(a.method, &a.headers, a.data.as_deref())?;
    // The digest a signing credential would add needs the whole body.
    let body = match body {
        Some(Body::Inline(b)) => Some(b),
        Some(Body::Stream(r)) => {
            let mut buf = Vec::new();
            r.take(proto::MAX_BODY as u64 + 1)
                .read_to_end(&mut buf)
                .map_err(|e| Failure::usage(format!("cannot read the body: {e}")))?;
            if buf.len() > proto::MAX_BODY {
                return Err(Failure::usage("explain reads bodies of at most 64 MiB"));
            }
            Some(buf)
        }
        None => None,
    };
    let job = JobRequest {
        credential: a.name,
        method,
        url: a.url,
        headers,
        body,
        follow_redirects: false,
        timeout_ms: None,
    };
    let Response::Explain(e) = client.call(&Request::Explain(job))? else {
        return Err(unexpected());
    };
    if a.json {
        let v = json!({
            "allowed": e.refused.is_none(),
            "method": e.method,
            "url": e.url,
            "refused": e.refused,
            "adds": e.adds,
        });
        println!("{v}");
    } else {
        println!("{} {}", e.method, e.url);
        match &e.refused {
            Some(rule) => println!("refused: {rule}"),
            None => {
                println!("allowed: vaultd would send it, adding:");
                for line in &e.adds {
                    println!("  {line}");
                }
            }
        }
    }
    match e.refused {
        Some(rule) => {
            eprintln!("vaultctl: refused: {rule}");
            Ok(proto::ErrorCode::PolicyRefused.exit_code())
        }
        None => Ok(0),
    }
}

fn unexpected() -> Failure {
    Failure::usage("vaultd sent an unexpected answer")
}
