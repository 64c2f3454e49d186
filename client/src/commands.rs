//! One function per subcommand: build the request, call the daemon, print.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use proto::{
    CredentialInfo, CredentialSpec, Header, Injection, JobRequest, JobResponse, Request, Response,
    Secret, StatusInfo, VaultState,
};
use serde_json::json;
use vaultctl::{Client, socket_path};

use crate::cli::{AddArgs, Cli, Command, KeyfileCommand, Preset, RequestArgs};
use crate::exit::{Failure, HTTP_ERROR};
use crate::secret_input;

pub fn run(cli: Cli) -> Result<u8, Failure> {
    let path = socket_path(cli.socket.as_deref()).ok_or_else(|| {
        Failure::usage("no socket path: set XDG_RUNTIME_DIR or VAULTD_SOCKET, or pass --socket")
    })?;
    let connect = || Client::connect(&path).map_err(Failure::from);
    match cli.command {
        Command::Status { json } => status(connect()?, json),
        Command::Init { passphrase_stdin } => {
            let passphrase = if passphrase_stdin {
                one_line()?
            } else {
                secret_input::prompt("New passphrase", true)?
            };
            done(
                connect()?,
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
            done(connect()?, req, "")
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
                connect()?,
                Request::Passwd { old, new },
                "passphrase changed",
            )
        }
        Command::Add(args) => add(connect()?, args),
        Command::Rotate { name, from_env } => {
            let value = secret_input::token(from_env.as_deref(), &name)?;
            done(connect()?, Request::Rotate { name, value }, "")
        }
        Command::Remove { name } => done(connect()?, Request::Remove { name }, ""),
        Command::List { json } => list(connect()?, json),
        Command::Keyfile {
            command:
                KeyfileCommand::Create {
                    path,
                    passphrase_stdin,
                },
        } => keyfile_create(connect, &path, passphrase_stdin),
        Command::Request(args) => request(connect()?, args),
        Command::Backup { file } => backup(connect()?, &file),
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
    }
    Ok(0)
}

fn add(mut client: Client, a: AddArgs) -> Result<u8, Failure> {
    let (injection, preset_origin) = match (a.preset, a.header, a.bearer) {
        (Some(Preset::Microreact), _, _) => (
            Injection::Header {
                name: "Access-Token".into(),
            },
            Some("https://microreact.org"),
        ),
        (Some(Preset::AccessProtocol), _, _) => {
            (Injection::Bearer, Some("https://go-api.accessprotocol.co"))
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
    let spec = CredentialSpec {
        injection: Some(injection),
        origins,
        allow_insecure_http: a.allow_insecure_http,
        methods: a.methods,
        path_prefixes: a.path_prefixes,
    };
    let value = secret_input::token(a.from_env.as_deref(), &a.name)?;
    client.call(&Request::Add {
        name: a.name,
        spec,
        value,
    })?;
    Ok(0)
}

fn injection_text(i: &Option<Injection>) -> String {
    match i {
        Some(Injection::Header { name }) => format!("header {name}"),
        Some(Injection::Bearer) => "bearer".into(),
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
    let rows: Vec<[String; 6]> = creds
        .iter()
        .map(|c| {
            [
                c.name.clone(),
                injection_text(&c.spec.injection),
                c.spec.origins.join(","),
                time_text(Some(c.created)),
                time_text(c.last_used),
                c.use_count.to_string(),
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

fn credential_json(c: &CredentialInfo) -> serde_json::Value {
    let (kind, header) = match &c.spec.injection {
        Some(Injection::Header { name }) => ("header", Some(name.clone())),
        Some(Injection::Bearer) => ("bearer", None),
        None => ("none", None),
    };
    json!({
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
    })
}

fn read_keyfile(path: &Path) -> Result<Secret, Failure> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| Failure::usage(format!("cannot open key file {}: {e}", path.display())))?;
    let mut buf = zeroize::Zeroizing::new([0u8; 33]);
    let n = f
        .read(&mut buf[..])
        .map_err(|e| Failure::usage(format!("cannot read key file {}: {e}", path.display())))?;
    if n != 32 {
        return Err(Failure::usage(format!(
            "{} is not a key file (expected 32 bytes)",
            path.display()
        )));
    }
    Ok(Secret::from_slice(&buf[..32]))
}

fn keyfile_create(
    connect: impl Fn() -> Result<Client, Failure>,
    path: &Path,
    passphrase_stdin: bool,
) -> Result<u8, Failure> {
    use std::os::unix::fs::OpenOptionsExt;
    let passphrase = if passphrase_stdin {
        one_line()?
    } else {
        secret_input::prompt("Passphrase", false)?
    };
    let mut client = connect()?;
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
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

fn parse_header(h: &str) -> Result<Header, Failure> {
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

fn read_body(data: &str) -> Result<Vec<u8>, Failure> {
    let limit = proto::MAX_BODY as u64;
    let too_big = || Failure::usage(format!("request body exceeds {} MiB", limit >> 20));
    let mut buf = Vec::new();
    match data.strip_prefix('@') {
        Some("-") => {
            std::io::stdin()
                .lock()
                .take(limit + 1)
                .read_to_end(&mut buf)
                .map_err(|e| Failure::usage(format!("cannot read stdin: {e}")))?;
        }
        Some(file) => {
            std::fs::File::open(file)
                .and_then(|f| f.take(limit + 1).read_to_end(&mut buf))
                .map_err(|e| Failure::usage(format!("cannot read {file}: {e}")))?;
        }
        None => buf = data.as_bytes().to_vec(),
    }
    if buf.len() as u64 > limit {
        return Err(too_big());
    }
    Ok(buf)
}

fn request(mut client: Client, a: RequestArgs) -> Result<u8, Failure> {
    let mut headers = a
        .headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<Result<Vec<_>, _>>()?;
    let body = a.data.as_deref().map(read_body).transpose()?;
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
    let method = a
        .method
        .unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.into());
    let timeout_ms = match a.max_time {
        Some(s) if !(s > 0.0 && s.is_finite()) => {
            return Err(Failure::usage(
                "--max-time must be a positive number of seconds",
            ));
        }
        Some(s) => Some((s * 1000.0).ceil() as u64),
        None => None,
    };
    let job = JobRequest {
        credential: a.name,
        method,
        url: a.url,
        headers,
        body,
        follow_redirects: a.location,
        timeout_ms,
    };
    let Response::Job(resp) = client.call(&Request::Job(job))? else {
        return Err(unexpected());
    };
    if a.fail && resp.status >= 400 {
        return Err(Failure {
            code: HTTP_ERROR,
            message: format!("the requested URL returned error: {}", resp.status),
        });
    }
    if a.json {
        println!("{}", response_json(&resp));
        return Ok(0);
    }
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) if p.as_os_str() != "-" => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p)
                .map_err(|e| Failure::usage(format!("cannot write {}: {e}", p.display())))?,
        )),
        _ => Box::new(std::io::stdout().lock()),
    };
    let write = |out: &mut dyn Write| -> std::io::Result<()> {
        if a.include {
            write!(out, "{} {}", resp.http_version, resp.status)?;
            if !resp.reason.is_empty() {
                write!(out, " {}", resp.reason)?;
            }
            out.write_all(b"\r\n")?;
            for h in &resp.headers {
                write!(out, "{}: ", h.name)?;
                out.write_all(&h.value)?;
                out.write_all(b"\r\n")?;
            }
            out.write_all(b"\r\n")?;
        }
        out.write_all(&resp.body)?;
        out.flush()
    };
    write(&mut *out).map_err(|e| Failure::usage(format!("cannot write the response: {e}")))?;
    Ok(0)
}

/// `{status, headers, body}`: headers as an object of lower-case names
/// (repeated headers joined with ", "); the body as text when it is UTF-8,
/// else as `body_base64`.
fn response_json(r: &JobResponse) -> serde_json::Value {
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

fn unexpected() -> Failure {
    Failure::usage("vaultd sent an unexpected answer")
}
