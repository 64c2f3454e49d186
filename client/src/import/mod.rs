//! `vaultctl import`: many tokens from a plain file into the vault in one
//! request and one save, all or nothing. The file is read into wiped
//! buffers, each value goes to vaultd as a `proto::Secret`, and nothing
//! printed or sent in an error ever holds a value: only names, keys, lines
//! and origins. The file itself is never changed; the user is told which
//! of its lines still hold tokens and how to remove them.

mod dotenv;
mod manifest;
mod netrc;

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use clap::ValueEnum;
use proto::{CredentialSpec, ImportEntry, Injection, Request, Secret};
use vaultctl::Client;
use zeroize::Zeroizing;

use crate::cli::{ImportArgs, ImportFormat, Preset};
use crate::exit::Failure;

/// A value found in a dotenv or netrc file: its key (or host), the line
/// the value is on.
pub struct Found {
    pub key: String,
    pub line: usize,
    pub value: Secret,
}

/// A file that cannot be read as its format. `place` is `line N` or
/// `entry N (NAME)`; `what` never quotes the file's text beyond a key.
#[derive(Debug, thiserror::Error)]
#[error("{place}: {what}")]
pub struct ParseError {
    pub place: String,
    pub what: String,
}

impl ParseError {
    pub fn at(line: usize, what: impl Into<String>) -> ParseError {
        ParseError {
            place: format!("line {line}"),
            what: what.into(),
        }
    }
}

/// One credential to add and where its value sits in the file.
struct Planned {
    entry: ImportEntry,
    /// What holds the value, as the file names it (`KEY`, `machine HOST`).
    key: String,
    /// The value's line in the file, when known.
    line: Option<usize>,
    /// Whether the file holds the value (not so for a manifest's `value_env`).
    in_file: bool,
}

/// What the file yields: the credentials, and what was left out (one
/// description each, never a value).
struct Plan {
    planned: Vec<Planned>,
    skipped: Vec<String>,
}

pub fn run(
    a: ImportArgs,
    connect: impl FnOnce() -> Result<Client, Failure>,
) -> Result<u8, Failure> {
    let stdin = a.file.as_os_str() == "-";
    let shown = if stdin {
        "stdin".to_owned()
    } else {
        a.file.display().to_string()
    };
    let input = read_input(&a.file, stdin, &shown)?;
    let format = a.format.unwrap_or_else(|| detect(&a.file, &input));
    let file_err = |e: String| Failure::usage(format!("{shown}: {e}"));
    let plan = match format {
        ImportFormat::Dotenv => plan_dotenv(&a, &input, &shown),
        ImportFormat::Netrc => plan_netrc(&a, &input),
        ImportFormat::Manifest => plan_manifest(&a, &input),
    }
    .map_err(file_err)?;
    let Plan { planned, skipped } = plan;
    for s in &skipped {
        println!("skipped {s}");
    }
    if planned.is_empty() {
        return Err(file_err(match format {
            ImportFormat::Dotenv => {
                "nothing to import: name the keys to import with --map KEY=NAME:PRESET".into()
            }
            _ => "nothing to import".into(),
        }));
    }
    let at = |p: &Planned| match p.line {
        Some(l) => format!("{shown}:{l}: {}", p.key),
        None => format!("{shown}: {}", p.key),
    };
    if a.dry_run {
        for p in &planned {
            println!(
                "would add {}: {}, origins {} ({})",
                p.entry.name,
                crate::commands::injection_text(&p.entry.spec.injection),
                p.entry.spec.origins.join(" "),
                at(p)
            );
        }
        println!(
            "dry run: {} credential(s); nothing was sent to vaultd (names already in the vault are not checked)",
            planned.len()
        );
        return Ok(0);
    }
    let mut report = Vec::with_capacity(planned.len());
    let mut entries = Vec::with_capacity(planned.len());
    for p in planned {
        if p.in_file {
            report.push(format!("{} -> credential {}", at(&p), p.entry.name));
        }
        entries.push(p.entry);
    }
    let count = entries.len();
    let req = Request::Import {
        entries,
        replace: a.replace,
    };
    // One frame carries the whole import (tens of thousands of tokens fit):
    // say so plainly rather than as a lost connection.
    let size = proto::codec::encoded_len(&req)
        .map_err(|e| Failure::usage(format!("cannot encode the import: {e}")))?;
    if size > proto::MAX_FRAME {
        return Err(file_err(format!(
            "the import is {} MiB, over the {} MiB one request may carry: split the file (each part is still all or nothing)",
            size >> 20,
            proto::MAX_FRAME >> 20
        )));
    }
    connect()?.call(&req).map_err(|e| {
        let mut f = Failure::from(e);
        f.message = format!("{shown}: {}", f.message);
        f
    })?;
    println!("imported {count} credential(s) from {shown} in one save");
    if report.is_empty() {
        return Ok(0);
    }
    println!("These places in {shown} still hold the tokens in plain text:");
    for line in &report {
        println!("  {line}");
    }
    if stdin {
        println!(
            "They came from stdin: remove them from wherever they were piped from. vaultctl changed nothing."
        );
    } else {
        println!(
            "vaultctl never edits the file. Delete them with an editor, or remove the whole file: shred -u {}",
            shell_quote(&shown)
        );
    }
    Ok(0)
}

/// Reads the whole input (bounded by what one request may carry) into a
/// buffer that is wiped when dropped, growing it by hand: a `Vec`'s own
/// growth would free each smaller copy unwiped.
fn read_input(path: &Path, stdin: bool, shown: &str) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let fail = |e: std::io::Error| Failure::usage(format!("cannot read {shown}: {e}"));
    let limit = proto::MAX_FRAME;
    let (mut reader, hint): (Box<dyn Read>, usize) = if stdin {
        (Box::new(std::io::stdin().lock()), 64 * 1024)
    } else {
        let f = std::fs::File::open(path).map_err(fail)?;
        let len = f.metadata().map_err(fail)?.len();
        (
            Box::new(f),
            usize::try_from(len).unwrap_or(usize::MAX).min(limit) + 1,
        )
    };
    let mut buf = Zeroizing::new(Vec::with_capacity(hint));
    loop {
        if buf.len() == buf.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(buf.capacity() * 2));
            bigger.extend_from_slice(&buf);
            buf = bigger;
        }
        let len = buf.len();
        let cap = buf.capacity();
        buf.resize(cap, 0);
        match reader.read(&mut buf[len..]) {
            Ok(0) => {
                buf.truncate(len);
                break;
            }
            Ok(n) => buf.truncate(len + n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(len),
            Err(e) => return Err(fail(e)),
        }
        if buf.len() > limit {
            return Err(Failure::usage(format!(
                "{shown} is larger than the {} MiB one import may carry: split it",
                limit >> 20
            )));
        }
    }
    Ok(buf)
}

/// netrc by its words, a manifest by its extension or shape, else dotenv.
fn detect(path: &Path, input: &[u8]) -> ImportFormat {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if matches!(ext.as_deref(), Some("toml" | "json")) || manifest::looks_like(input) {
        ImportFormat::Manifest
    } else if name.ends_with("netrc") || netrc::looks_like(input) {
        ImportFormat::Netrc
    } else {
        ImportFormat::Dotenv
    }
}

/// `--map` values: KEY -> (NAME, PRESET). Keys and names are not secret.
fn maps(a: &ImportArgs) -> Result<HashMap<String, (String, Option<Preset>)>, String> {
    let mut out = HashMap::new();
    for m in &a.maps {
        let Some((key, target)) = m.split_once('=') else {
            return Err(format!("--map {m}: expected KEY=NAME or KEY=NAME:PRESET"));
        };
        let (name, preset) = match target.split_once(':') {
            Some((n, p)) => {
                let preset = Preset::from_str(p, true).map_err(|_| {
                    format!("--map {m}: unknown preset {p:?} (microreact, access-protocol)")
                })?;
                (n, Some(preset))
            }
            None => (target, None),
        };
        if key.is_empty() || name.is_empty() {
            return Err(format!("--map {m}: expected KEY=NAME or KEY=NAME:PRESET"));
        }
        if out
            .insert(key.to_owned(), (name.to_owned(), preset))
            .is_some()
        {
            return Err(format!("--map {key}=...: given twice"));
        }
    }
    Ok(out)
}

/// `--bearer` or `--header NAME`, if given.
fn flag_injection(a: &ImportArgs) -> Option<Injection> {
    match (&a.header, a.bearer) {
        (Some(name), _) => Some(Injection::Header { name: name.clone() }),
        (None, true) => Some(Injection::Bearer),
        (None, false) => None,
    }
}

fn spec(injection: Injection, origins: Vec<String>) -> CredentialSpec {
    CredentialSpec {
        injection: Some(injection),
        origins,
        ..CredentialSpec::default()
    }
}

fn plan_dotenv(a: &ImportArgs, input: &[u8], shown: &str) -> Result<Plan, String> {
    let maps = maps(a)?;
    let found = dotenv::parse(input).map_err(|e| e.to_string())?;
    let mut lines: HashMap<&str, usize> = HashMap::new();
    for f in &found {
        if let Some(first) = lines.insert(&f.key, f.line) {
            if maps.contains_key(&f.key) {
                return Err(format!(
                    "line {}: {} is set again (first on line {first}): keep one",
                    f.line, f.key
                ));
            }
        }
    }
    let mut missing: Vec<&str> = maps
        .keys()
        .filter(|k| !lines.contains_key(k.as_str()))
        .map(String::as_str)
        .collect();
    missing.sort_unstable();
    if !missing.is_empty() {
        return Err(format!(
            "no such key for --map: {} (not set in {shown})",
            missing.join(", ")
        ));
    }
    let mut plan = Plan {
        planned: Vec::new(),
        skipped: Vec::new(),
    };
    let mut unmapped = Vec::new();
    for f in found {
        let Some((name, preset)) = maps.get(&f.key) else {
            unmapped.push(format!("{} (line {})", f.key, f.line));
            continue;
        };
        let spec = match preset {
            Some(p) => {
                let (injection, origin) = p.injection_and_origin();
                let origins = if a.origins.is_empty() {
                    vec![origin.to_owned()]
                } else {
                    a.origins.clone()
                };
                spec(injection, origins)
            }
            None => {
                let injection = flag_injection(a).ok_or_else(|| {
                    format!(
                        "--map {}={name}: give a preset (KEY=NAME:PRESET) or --bearer/--header with --origin",
                        f.key
                    )
                })?;
                if a.origins.is_empty() {
                    return Err(format!(
                        "--map {}={name}: --bearer and --header need at least one --origin",
                        f.key
                    ));
                }
                spec(injection, a.origins.clone())
            }
        };
        plan.planned.push(Planned {
            entry: ImportEntry {
                name: name.clone(),
                spec,
                value: f.value,
                source: format!("line {} ({})", f.line, f.key),
            },
            key: f.key,
            line: Some(f.line),
            in_file: true,
        });
    }
    if !unmapped.is_empty() {
        plan.skipped
            .push(format!("(no --map): {}", unmapped.join(", ")));
    }
    Ok(plan)
}

fn plan_netrc(a: &ImportArgs, input: &[u8]) -> Result<Plan, String> {
    let maps = maps(a)?;
    if let Some((key, _)) = maps.iter().find(|(_, (_, p))| p.is_some()) {
        return Err(format!(
            "--map {key}: a netrc entry takes no preset (choose --bearer or --header)"
        ));
    }
    if !a.origins.is_empty() {
        return Err(
            "--origin does not apply to netrc: each password is bound to https://HOST".into(),
        );
    }
    let parsed = netrc::parse(input).map_err(|e| e.to_string())?;
    let hosts: Vec<&str> = parsed.found.iter().map(|f| f.key.as_str()).collect();
    if let Some(k) = maps.keys().find(|k| !hosts.contains(&k.as_str())) {
        return Err(format!("no such machine for --map: {k}"));
    }
    let injection = flag_injection(a);
    if injection.is_none() && !parsed.found.is_empty() {
        return Err("choose how the passwords are sent: --bearer or --header NAME".into());
    }
    let planned = parsed
        .found
        .into_iter()
        .map(|f| {
            let name = maps.get(&f.key).map_or(f.key.clone(), |(n, _)| n.clone());
            let origin = format!("https://{}", f.key);
            Planned {
                entry: ImportEntry {
                    name,
                    spec: spec(injection.clone().unwrap_or(Injection::Bearer), vec![origin]),
                    value: f.value,
                    source: format!("line {} (machine {})", f.line, f.key),
                },
                key: format!("machine {} password", f.key),
                line: Some(f.line),
                in_file: true,
            }
        })
        .collect();
    Ok(Plan {
        planned,
        skipped: parsed.skipped,
    })
}

fn plan_manifest(a: &ImportArgs, input: &[u8]) -> Result<Plan, String> {
    if !a.maps.is_empty() || a.bearer || a.header.is_some() || !a.origins.is_empty() {
        return Err(
            "a manifest names each credential's policy itself: --map, --bearer, --header and --origin do not apply"
                .into(),
        );
    }
    let entries = manifest::parse(input).map_err(|e| e.to_string())?;
    let mut planned = Vec::with_capacity(entries.len());
    for e in entries {
        let place = format!("entry {} ({})", e.index, e.name);
        let (injection, preset_origin) = match (&e.preset, &e.header, e.bearer) {
            (Some(p), None, false) => {
                let preset = Preset::from_str(p, true).map_err(|_| {
                    format!("{place}: unknown preset {p:?} (microreact, access-protocol)")
                })?;
                let (i, o) = preset.injection_and_origin();
                (i, Some(o))
            }
            (None, Some(h), false) => (Injection::Header { name: h.clone() }, None),
            (None, None, true) => (Injection::Bearer, None),
            _ => {
                return Err(format!(
                    "{place}: give exactly one of preset, header and bearer = true"
                ));
            }
        };
        let origins = match (e.origins.is_empty(), preset_origin) {
            (false, _) => e.origins,
            (true, Some(o)) => vec![o.to_owned()],
            (true, None) => return Err(format!("{place}: header and bearer need origins")),
        };
        let source = match e.value_line {
            Some(l) => format!("line {l}, {place}"),
            None => place.clone(),
        };
        planned.push(Planned {
            entry: ImportEntry {
                name: e.name,
                spec: CredentialSpec {
                    injection: Some(injection),
                    origins,
                    allow_insecure_http: e.allow_insecure_http,
                    methods: e.methods,
                    path_prefixes: e.path_prefixes,
                    source: None,
                },
                value: e.value,
                source,
            },
            key: format!("value of {place}"),
            line: e.value_line,
            in_file: e.in_file,
        });
    }
    Ok(Plan {
        planned,
        skipped: Vec::new(),
    })
}

/// `s` as one shell word, for a command the user may paste.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@%".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats() {
        let p = Path::new;
        assert_eq!(detect(p("x.toml"), b"A=1"), ImportFormat::Manifest);
        assert_eq!(detect(p("x.JSON"), b""), ImportFormat::Manifest);
        assert_eq!(
            detect(p("-"), b"[[credential]]\nname='a'"),
            ImportFormat::Manifest
        );
        assert_eq!(
            detect(p("-"), b"{\"credential\": []}"),
            ImportFormat::Manifest
        );
        assert_eq!(detect(p("/home/u/.netrc"), b""), ImportFormat::Netrc);
        assert_eq!(
            detect(p("creds"), b"\nmachine a password b"),
            ImportFormat::Netrc
        );
        assert_eq!(detect(p(".env"), b"export A=1\n"), ImportFormat::Dotenv);
    }

    #[test]
    fn shell_words() {
        assert_eq!(shell_quote("/a/.env"), "/a/.env");
        assert_eq!(shell_quote("my file's"), r"'my file'\''s'");
    }
}
