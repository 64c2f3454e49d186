//! `vaultctl scan`: which files to look at, sending them to vaultd,
//! printing what it found, and `--redact`'s rewrite. vaultd does all the
//! matching (see `vaultctl::scan_session`); this side only ever learns
//! where a copy is and how long it is.

use std::collections::HashSet;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use proto::ScanFinding;
use serde_json::json;
use vaultctl::Client;
use vaultctl::scan_session::{FileOutcome, ScanSession};
use zeroize::{Zeroize, Zeroizing};

use crate::cli::ScanArgs;
use crate::exit::{FOUND, Failure};

/// How much of a file is looked at for a NUL byte before it is sent: as
/// git and grep decide that a file is binary.
const BINARY_PROBE: usize = 8 * 1024;

/// A file not scanned, and why.
struct Skip {
    path: PathBuf,
    reason: String,
    /// Worth a line on stderr in text mode (an explicit path, or a file
    /// that could not be read); binary files met in a walk are not.
    loud: bool,
}

/// The files to scan, gathered before the session opens.
struct Walk {
    max_depth: Option<usize>,
    seen: HashSet<(u64, u64)>,
    files: Vec<PathBuf>,
    skipped: Vec<Skip>,
}

impl Walk {
    fn skip(&mut self, path: &Path, reason: impl Into<String>, loud: bool) {
        self.skipped.push(Skip {
            path: path.to_owned(),
            reason: reason.into(),
            loud,
        });
    }

    /// A path the user named, or a default place (`optional`: silently
    /// ignored when it does not exist). A symlink named here is followed:
    /// the user chose it.
    fn root(&mut self, path: &Path, optional: bool) {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if optional && e.kind() == io::ErrorKind::NotFound => return,
            Err(e) => return self.skip(path, reason(&e), true),
        };
        if meta.is_dir() {
            match fs::canonicalize(path) {
                Ok(real) => self.dir(path, &real, 0, !optional),
                Err(e) => self.skip(path, reason(&e), true),
            }
        } else {
            self.file(path, &meta, true);
        }
    }

    /// Every file under `dir`, whose real path lies under `root`. `.git`
    /// directories are not entered; symlinks are followed only to files
    /// inside `root` (a directory link inside it is walked as itself).
    fn dir(&mut self, dir: &Path, root: &Path, depth: usize, loud: bool) {
        let mut entries: Vec<fs::DirEntry> = match fs::read_dir(dir) {
            Ok(rd) => rd.filter_map(Result::ok).collect(),
            Err(e) => return self.skip(dir, reason(&e), true),
        };
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_symlink() {
                match fs::canonicalize(&path) {
                    Ok(real) if real.starts_with(root) => match fs::metadata(&real) {
                        Ok(m) if m.is_dir() => {}
                        Ok(m) => self.file(&path, &m, loud),
                        Err(e) => self.skip(&path, reason(&e), loud),
                    },
                    Ok(_) => self.skip(&path, "symlink out of the scanned tree", loud),
                    Err(_) => self.skip(&path, "broken symlink", loud),
                }
            } else if kind.is_dir() {
                if entry.file_name() == ".git" || self.max_depth.is_some_and(|m| depth >= m) {
                    continue;
                }
                self.dir(&path, root, depth + 1, loud);
            } else {
                match entry.metadata() {
                    Ok(m) => self.file(&path, &m, loud),
                    Err(e) => self.skip(&path, reason(&e), true),
                }
            }
        }
    }

    fn file(&mut self, path: &Path, meta: &Metadata, loud: bool) {
        if !meta.is_file() {
            return self.skip(path, "not a regular file", loud);
        }
        if self.seen.insert((meta.dev(), meta.ino())) {
            self.files.push(path.to_owned());
        }
    }

    /// `.env*` files and git working trees under `dir` (the current
    /// directory when no path is given).
    fn projects(&mut self, dir: &Path, root: &Path, depth: usize) {
        if dir.join(".git").exists() {
            return self.dir(dir, root, depth, false);
        }
        let Ok(rd) = fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<fs::DirEntry> = rd.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                if self.max_depth.is_none_or(|m| depth < m) {
                    self.projects(&path, root, depth + 1);
                }
            } else if kind.is_file() && entry.file_name().to_string_lossy().starts_with(".env") {
                if let Ok(m) = entry.metadata() {
                    self.file(&path, &m, false);
                }
            }
        }
    }

    /// The default places (`vaultctl scan` without PATH).
    fn defaults(&mut self) {
        if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
            for rel in [
                ".bash_history",
                ".zsh_history",
                ".local/share/fish/fish_history",
                ".bashrc",
                ".bash_profile",
                ".profile",
                ".zshrc",
                ".zprofile",
                ".config/fish/config.fish",
                ".netrc",
            ] {
                self.root(&home.join(rel), true);
            }
            if let Ok(rd) = fs::read_dir(&home) {
                let mut names: Vec<PathBuf> = rd
                    .filter_map(Result::ok)
                    .filter(|e| {
                        let n = e.file_name();
                        let n = n.to_string_lossy();
                        n.starts_with('.') && n.ends_with("_history")
                    })
                    .map(|e| e.path())
                    .collect();
                names.sort();
                for p in names {
                    self.root(&p, true);
                }
            }
            self.root(&home.join(".config"), true);
        }
        if let Ok(cwd) = std::env::current_dir() {
            let real = fs::canonicalize(&cwd).unwrap_or(cwd);
            self.projects(Path::new("."), &real, 0);
        }
    }
}

/// An I/O error as a short reason (never file contents).
fn reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        _ => e.to_string(),
    }
}

/// What the scan found, for printing and the exit code.
#[derive(Default)]
struct Totals {
    findings: Vec<(PathBuf, ScanFinding)>,
    skipped: Vec<Skip>,
    rewritten: Vec<PathBuf>,
    files: u64,
    bytes: u64,
    /// Copies still in files after this run (all of them without --redact).
    left: usize,
}

pub fn run(mut client: Client, a: ScanArgs) -> Result<u8, Failure> {
    let mut walk = Walk {
        max_depth: a.max_depth,
        seen: HashSet::new(),
        files: Vec::new(),
        skipped: Vec::new(),
    };
    if a.paths.is_empty() {
        walk.defaults();
    } else {
        for p in &a.paths {
            walk.root(p, false);
        }
    }
    let mut totals = Totals {
        skipped: std::mem::take(&mut walk.skipped),
        ..Totals::default()
    };
    let mut session = client.scan_session()?;
    let mut out = io::stdout().lock();
    for path in &walk.files {
        scan_one(&mut session, path, &a, &mut totals, &mut out)?;
    }
    session.end()?;
    if a.json {
        print_json(&mut out, &totals)?;
    } else {
        for s in totals.skipped.iter().filter(|s| s.loud) {
            eprintln!("vaultctl: {}: skipped: {}", s.path.display(), s.reason);
        }
    }
    out.flush()
        .map_err(|e| Failure::usage(format!("stdout: {e}")))?;
    Ok(if totals.left > 0 { FOUND } else { 0 })
}

/// Checks, sends and (with `--redact`) rewrites one file.
fn scan_one(
    session: &mut ScanSession<'_>,
    path: &Path,
    a: &ScanArgs,
    totals: &mut Totals,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let loud = !a.paths.is_empty();
    let mut skip = |reason: String, loud: bool| {
        totals.skipped.push(Skip {
            path: path.to_owned(),
            reason,
            loud,
        })
    };
    // O_NONBLOCK: a FIFO or device swapped in after the walk opens without
    // waiting for a writer, and is then refused by its type.
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32)
        .open(path)
    {
        Ok(f) => f,
        Err(e) => {
            skip(reason(&e), true);
            return Ok(());
        }
    };
    let before = match file.metadata() {
        Ok(m) if m.is_file() => m,
        Ok(_) => {
            skip("not a regular file".into(), loud);
            return Ok(());
        }
        Err(e) => {
            skip(reason(&e), true);
            return Ok(());
        }
    };
    if before.len() > a.max_size {
        skip(
            format!("larger than --max-size ({} bytes)", a.max_size),
            true,
        );
        return Ok(());
    }
    let mut head = Zeroizing::new(vec![0u8; BINARY_PROBE]);
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                skip(reason(&e), true);
                return Ok(());
            }
        }
    }
    if head[..got].contains(&0) {
        skip("binary (a NUL byte in its first 8 KiB)".into(), loud);
        return Ok(());
    }
    let outcome = session.file(&head[..got], &mut file, a.max_size)?;
    head.zeroize();
    let (report, bytes) = match outcome {
        FileOutcome::Scanned { report, bytes } => (report, bytes),
        FileOutcome::Refused(e) => {
            skip(e.message, true);
            return Ok(());
        }
        FileOutcome::Unreadable { error, .. } => {
            skip(reason(&error), true);
            return Ok(());
        }
        FileOutcome::Oversize { .. } => {
            skip(format!("grew past --max-size ({} bytes)", a.max_size), true);
            return Ok(());
        }
    };
    totals.files += 1;
    totals.bytes += bytes;
    let mut findings = report.findings;
    findings.sort_by_key(|f| (f.offset, f.len));
    if !a.json {
        for f in &findings {
            writeln!(
                out,
                "{}:{}: credential {} ({})",
                path.display(),
                f.line,
                f.credential,
                f.form
            )
            .map_err(|e| Failure::usage(format!("stdout: {e}")))?;
        }
        out.flush()
            .map_err(|e| Failure::usage(format!("stdout: {e}")))?;
    }
    let mut left = findings.len();
    if a.redact && !findings.is_empty() {
        match rewrite(path, &file, &before, &findings) {
            Ok(()) => {
                left = 0;
                totals.rewritten.push(path.to_owned());
                if !a.json {
                    eprintln!(
                        "vaultctl: {}: {} cop{} replaced",
                        path.display(),
                        findings.len(),
                        if findings.len() == 1 { "y" } else { "ies" }
                    );
                }
                if is_history(path) {
                    eprintln!(
                        "vaultctl: note: {} is a shell history: a running shell still holds the old lines and may write them back when it exits; in each open bash run `history -c` (then `history -r`), in zsh `fc -p`, or close those shells first",
                        path.display()
                    );
                }
            }
            Err(why) => skip(format!("not rewritten: {why}"), true),
        }
    }
    totals.left += left;
    totals
        .findings
        .extend(findings.into_iter().map(|f| (path.to_owned(), f)));
    Ok(())
}

fn is_history(path: &Path) -> bool {
    path.file_name()
        .map(|n| n.to_string_lossy().ends_with("history"))
        .unwrap_or(false)
}

/// Whether the file is still the one that was scanned: same inode, size
/// and modification time.
fn same(a: &Metadata, b: &Metadata) -> bool {
    a.dev() == b.dev()
        && a.ino() == b.ino()
        && a.len() == b.len()
        && a.mtime() == b.mtime()
        && a.mtime_nsec() == b.mtime_nsec()
}

/// Replaces each finding's bytes with `<tokenvault:NAME>`: a temporary
/// file next to it (same owner and mode), written from the descriptor
/// that was scanned, fsynced, renamed over the original, and the directory
/// fsynced. Refused if the file changed since it was opened. The bytes
/// inside the ranges are never read.
fn rewrite(
    path: &Path,
    file: &File,
    before: &Metadata,
    findings: &[ScanFinding],
) -> Result<(), String> {
    let real = fs::canonicalize(path).map_err(|e| reason(&e))?;
    let unchanged = |f: &File| -> Result<(), String> {
        let now = f.metadata().map_err(|e| reason(&e))?;
        let there = fs::metadata(&real).map_err(|e| reason(&e))?;
        if same(before, &now) && same(before, &there) {
            Ok(())
        } else {
            Err("the file changed during the scan; scan it again".to_owned())
        }
    };
    unchanged(file)?;
    // Merged ranges, each with the name of its first finding.
    let mut ranges: Vec<(u64, u64, &str)> = Vec::new();
    for f in findings {
        let (s, e) = (f.offset, f.offset + f.len);
        match ranges.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => ranges.push((s, e, &f.credential)),
        }
    }
    let dir = real.parent().ok_or("no parent directory")?;
    let name = real.file_name().ok_or("no file name")?;
    let tmp_path = dir.join(format!(
        ".{}.tokenvault-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut tmp = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp_path)
        .map_err(|e| format!("cannot create a temporary file next to it: {}", reason(&e)))?;
    let result = (|| -> Result<(), String> {
        let io = |e: io::Error| reason(&e);
        rustix::fs::fchown(
            &tmp,
            Some(rustix::fs::Uid::from_raw(before.uid())),
            Some(rustix::fs::Gid::from_raw(before.gid())),
        )
        .map_err(|e| format!("cannot keep the owner: {e}"))?;
        tmp.set_permissions(before.permissions()).map_err(io)?;
        let mut pos = 0u64;
        for &(s, e, name) in &ranges {
            copy_range(file, &mut tmp, pos, s)?;
            tmp.write_all(format!("<tokenvault:{name}>").as_bytes())
                .map_err(io)?;
            pos = e;
        }
        copy_range(file, &mut tmp, pos, before.len())?;
        tmp.sync_all().map_err(io)?;
        unchanged(file)?;
        fs::rename(&tmp_path, &real).map_err(io)?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp_path);
    }
    result
}

/// Copies `[from, to)` of `src` (read at offsets, not through its cursor)
/// to `dst`, through a buffer wiped afterwards.
fn copy_range(src: &File, dst: &mut File, from: u64, to: u64) -> Result<(), String> {
    let mut buf = Zeroizing::new(vec![0u8; 64 * 1024]);
    let mut at = from;
    while at < to {
        let want = ((to - at) as usize).min(buf.len());
        let n = match src.read_at(&mut buf[..want], at) {
            Ok(0) => return Err("the file shrank during the scan".to_owned()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(reason(&e)),
        };
        dst.write_all(&buf[..n]).map_err(|e| reason(&e))?;
        at += n as u64;
    }
    Ok(())
}

/// The `--json` object (docs/json.md).
fn print_json(out: &mut dyn Write, t: &Totals) -> Result<(), Failure> {
    let findings: Vec<serde_json::Value> = t
        .findings
        .iter()
        .map(|(p, f)| {
            json!({
                "path": p.to_string_lossy(),
                "line": f.line,
                "credential": f.credential,
                "form": f.form,
                "offset": f.offset,
                "length": f.len,
            })
        })
        .collect();
    let skipped: Vec<serde_json::Value> = t
        .skipped
        .iter()
        .map(|s| json!({"path": s.path.to_string_lossy(), "reason": s.reason}))
        .collect();
    let rewritten: Vec<String> = t
        .rewritten
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let v = json!({
        "findings": findings,
        "skipped": skipped,
        "rewritten": rewritten,
        "files_scanned": t.files,
        "bytes_scanned": t.bytes,
    });
    writeln!(out, "{v}").map_err(|e| Failure::usage(format!("stdout: {e}")))
}
