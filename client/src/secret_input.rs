//! Reading secrets from a TTY (no echo), stdin or an environment variable.
//! Never from argv.

use std::io::{IsTerminal, Read};

use proto::Secret;
use zeroize::Zeroizing;

use crate::exit::Failure;

/// Reads all of stdin (bounded) into one exactly-reserved buffer.
fn read_stdin_bounded() -> Result<Zeroizing<Vec<u8>>, Failure> {
    let limit = proto::MAX_SECRET * 2 + 4;
    let mut buf = Zeroizing::new(Vec::with_capacity(limit + 1));
    std::io::stdin()
        .lock()
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Failure::usage(format!("cannot read stdin: {e}")))?;
    if buf.len() > limit {
        return Err(Failure::usage(
            "stdin holds more than a secret's maximum size",
        ));
    }
    Ok(buf)
}

fn strip_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A token value for `add`/`rotate`: from `--from-env VAR`, a no-echo
/// prompt on a TTY, or all of stdin (one trailing newline removed).
pub fn token(from_env: Option<&str>, name: &str) -> Result<Secret, Failure> {
    if let Some(var) = from_env {
        let v = std::env::var_os(var)
            .ok_or_else(|| Failure::usage(format!("environment variable {var} is not set")))?;
        return Ok(Secret::new(std::os::unix::ffi::OsStringExt::into_vec(v)));
    }
    if std::io::stdin().is_terminal() {
        let s = rpassword::prompt_password(format!("Token for {name}: "))
            .map_err(|e| Failure::usage(format!("cannot read the token: {e}")))?;
        return Ok(Secret::new(s.into_bytes()));
    }
    let buf = read_stdin_bounded()?;
    Ok(Secret::from_slice(strip_newline(&buf)))
}

/// Key material for `add --sign ... --import`: `--from-env VAR`, a no-echo
/// prompt on a TTY (a typed HMAC secret), or all of stdin byte-exact: a DER
/// key or raw seed may well end in a 0x0a byte that is not a newline.
pub fn key_material(from_env: Option<&str>, name: &str) -> Result<Secret, Failure> {
    if from_env.is_some() || std::io::stdin().is_terminal() {
        return token(from_env, name);
    }
    let buf = read_stdin_bounded()?;
    if buf.is_empty() {
        return Err(Failure::usage("no key on stdin"));
    }
    Ok(Secret::from_slice(&buf))
}

/// `n` passphrase lines from stdin (`--passphrase-stdin`).
pub fn stdin_lines(n: usize) -> Result<Vec<Secret>, Failure> {
    let buf = read_stdin_bounded()?;
    let mut out = Vec::with_capacity(n);
    let mut rest: &[u8] = &buf;
    for _ in 0..n {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        out.push(Secret::from_slice(strip_newline(line)));
        rest = tail;
    }
    if out.iter().any(|s| s.is_empty()) {
        return Err(Failure::usage(format!(
            "expected {n} non-empty passphrase line(s) on stdin"
        )));
    }
    Ok(out)
}

/// A passphrase from the terminal; `confirm` asks twice (for new ones).
pub fn prompt(label: &str, confirm: bool) -> Result<Secret, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "no terminal to ask for the passphrase: pass --passphrase-stdin",
        ));
    }
    let read = |p: &str| {
        rpassword::prompt_password(p)
            .map(|s| Secret::new(s.into_bytes()))
            .map_err(|e| Failure::usage(format!("cannot read the passphrase: {e}")))
    };
    let first = read(&format!("{label}: "))?;
    if confirm {
        let again = read(&format!("{label} (again): "))?;
        if first.expose() != again.expose() {
            return Err(Failure::usage("the passphrases do not match"));
        }
    }
    if first.is_empty() {
        return Err(Failure::usage("the passphrase must not be empty"));
    }
    Ok(first)
}
