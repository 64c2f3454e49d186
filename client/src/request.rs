//! `vaultctl request`: curl's flags turned into a job (see `curl`), the
//! response printed as curl prints it, `-w`, and `--retry`.

use std::io::{Read, Write};
use std::time::{Duration, Instant, SystemTime};

use proto::{Header, JobRequest, JobResponse};
use vaultctl::Client;

use crate::cli::{DataKind, PrintAs, RequestArgs};
use crate::commands::{parse_header, response_json};
use crate::curl::{self, BodySpec};
use crate::exit::{Failure, HTTP_ERROR};
use crate::progress;
use crate::writeout::{self, Info};

/// Bodies up to this size are read before the job starts and sent
/// inline (with a Content-Length, as curl); larger ones stream.
const INLINE_MAX: usize = 1 << 20;

/// What a job sends, built once and sent again by each retry.
struct Plan {
    method: String,
    url: String,
    headers: Vec<Header>,
    body: Option<BodySpec>,
}

fn has(headers: &[Header], name: &str) -> bool {
    headers.iter().any(|h| h.name.eq_ignore_ascii_case(name))
}

fn add_default(headers: &mut Vec<Header>, name: &str, value: &str) {
    if !has(headers, name) {
        headers.push(Header {
            name: name.into(),
            value: value.as_bytes().to_vec(),
        });
    }
}

/// `-H` values: `Name: value`, `Name;` (an empty header, as curl), or
/// `@FILE` with one header per line; also the names given as `Name:`, which
/// in curl remove a header curl would add (e.g. -d's Content-Type).
fn headers_of(args: &[String]) -> Result<(Vec<Header>, Vec<String>), Failure> {
    let mut out = Vec::new();
    let mut removed = Vec::new();
    let mut one = |h: &str| -> Result<(), Failure> {
        if let Some(name) = h.strip_suffix(';').filter(|n| !n.contains(':')) {
            out.push(Header {
                name: name.trim().to_owned(),
                value: Vec::new(),
            });
            return Ok(());
        }
        let h = parse_header(h)?;
        // `Name:` with nothing after it removes a header curl would add.
        if h.value.is_empty() {
            removed.push(h.name);
        } else {
            out.push(h);
        }
        Ok(())
    };
    for a in args {
        match a.strip_prefix('@') {
            Some(file) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| Failure::usage(format!("-H: cannot read {file}: {e}")))?;
                for line in text.lines().map(|l| l.trim_end_matches('\r')) {
                    if !line.trim().is_empty() {
                        one(line)?;
                    }
                }
            }
            None => one(a)?,
        }
    }
    Ok((out, removed))
}

fn plan(a: &RequestArgs) -> Result<Plan, Failure> {
    let (mut headers, removed) = headers_of(&a.headers)?;
    if let Some(ua) = &a.user_agent {
        add_default(&mut headers, "User-Agent", ua);
    }
    if let Some(r) = &a.referer {
        add_default(&mut headers, "Referer", r);
    }

    // clap requires exactly one of them.
    let mut url = a
        .url
        .clone()
        .or_else(|| a.url_flag.clone())
        .unwrap_or_default();
    let bodies = [
        !a.data_order.is_empty() && !a.get,
        !a.form_order.is_empty(),
        a.upload_file.is_some(),
    ];
    if bodies.iter().filter(|b| **b).count() > 1 {
        return Err(Failure::usage(
            "choose one body: -d/--data*/--json, -F/--form or -T/--upload-file",
        ));
    }
    if a.head && bodies.iter().any(|b| *b) {
        return Err(Failure::usage("-I/--head sends no body: drop -d, -F or -T"));
    }
    let mut body = None;
    if !a.data_order.is_empty() {
        let spec = curl::data_body(&a.data_order)?;
        if a.get {
            url = curl::append_query(&url, &curl::read_body(&spec)?)?;
        } else {
            if a.data_order.iter().any(|(k, _)| *k == DataKind::Json) {
                add_default(&mut headers, "Content-Type", "application/json");
                add_default(&mut headers, "Accept", "application/json");
            } else {
                add_default(
                    &mut headers,
                    "Content-Type",
                    "application/x-www-form-urlencoded",
                );
            }
            body = Some(spec);
        }
    }
    if !a.form_order.is_empty() {
        let (spec, ctype) = curl::multipart(&a.form_order)?;
        add_default(&mut headers, "Content-Type", &ctype);
        body = Some(spec);
    }
    if let Some(file) = &a.upload_file {
        url = curl::upload_url(&url, file);
        let mut spec = BodySpec {
            chunked: file.as_os_str() == "-",
            ..BodySpec::default()
        };
        spec.segments.push(if file.as_os_str() == "-" {
            curl::Segment::Stdin
        } else {
            curl::Segment::File(file.clone())
        });
        body = Some(spec);
    }
    for q in &a.url_query {
        url = curl::append_query(&url, &curl::url_query_part(q)?)?;
    }
    headers.retain(|h| !removed.iter().any(|r| r.eq_ignore_ascii_case(&h.name)));
    let method = match &a.method {
        Some(m) => m.clone(),
        None if a.head => "HEAD".into(),
        None if a.upload_file.is_some() => "PUT".into(),
        None if body.is_some() => "POST".into(),
        None => "GET".into(),
    };
    Ok(Plan {
        method,
        url,
        headers,
        body,
    })
}

/// How one try ended.
struct Attempt {
    /// The exit code, or the failure to report.
    result: Result<u8, Failure>,
    /// The response's head, when one arrived.
    head: Option<JobResponse>,
    info: Info,
}

pub fn run(a: RequestArgs, connect: impl Fn() -> Result<Client, Failure>) -> Result<u8, Failure> {
    let write_out = a.write_out.as_deref().map(writeout::parse).transpose()?;
    let timeout_ms = match a.max_time {
        Some(s) if !(s > 0.0 && s.is_finite()) => {
            return Err(Failure::usage(
                "--max-time must be a positive number of seconds",
            ));
        }
        Some(s) => Some((s * 1000.0).ceil() as u64),
        None => None,
    };
    let plan = plan(&a)?;
    let start = Instant::now();
    let mut retries_left = a.retry;
    let mut backoff = Duration::from_secs(1);
    loop {
        let attempt = attempt(&a, &plan, timeout_ms, &connect);
        let why = retry_reason(&a, &attempt);
        let retry = match why {
            Some(why) if retries_left > 0 => {
                let wait = a
                    .retry_delay
                    .map(Duration::from_secs)
                    .or_else(|| attempt.head.as_ref().and_then(retry_after))
                    .unwrap_or(backoff);
                let in_time = a
                    .retry_max_time
                    .is_none_or(|m| start.elapsed() + wait <= Duration::from_secs(m));
                let replayable = plan.body.as_ref().is_none_or(BodySpec::replayable);
                if !replayable {
                    say(
                        &a,
                        &format!(
                            "{why}; not retrying: the body came from stdin, which cannot be sent again"
                        ),
                    );
                    None
                } else if in_time {
                    say(
                        &a,
                        &format!(
                            "{why}; retrying in {} s ({retries_left} {} left)",
                            wait.as_secs_f64(),
                            if retries_left == 1 {
                                "retry"
                            } else {
                                "retries"
                            }
                        ),
                    );
                    Some(wait)
                } else {
                    None
                }
            }
            _ => None,
        };
        if let Some(wait) = retry {
            std::thread::sleep(wait);
            retries_left -= 1;
            backoff = (backoff * 2).min(Duration::from_secs(600));
            continue;
        }
        return Ok(finish(&a, attempt, write_out.as_deref()));
    }
}

/// A warning on stderr, unless `-s` without `-S`.
fn say(a: &RequestArgs, text: &str) {
    if !a.silent || a.show_error {
        eprintln!("vaultctl: {text}");
    }
}

/// Prints the error line and `-w`; the exit code.
fn finish(a: &RequestArgs, mut attempt: Attempt, write_out: Option<&[writeout::Piece]>) -> u8 {
    let _ = std::io::stdout().flush();
    let code = match attempt.result {
        Ok(code) => code,
        Err(f) => {
            say(a, &f.message);
            attempt.info.errormsg = f.message;
            f.code
        }
    };
    attempt.info.exitcode = code;
    if let Some(w) = write_out {
        writeout::render(w, &attempt.info);
    }
    code
}

/// Why curl would try again, or `None`.
fn retry_reason(a: &RequestArgs, t: &Attempt) -> Option<String> {
    if a.retry == 0 {
        return None;
    }
    if let Some(h) = &t.head {
        if matches!(h.status, 408 | 429 | 500 | 502 | 503 | 504) {
            return Some(format!("HTTP {}", h.status));
        }
    }
    let Err(f) = &t.result else { return None };
    let upstream = f.code == proto::ErrorCode::Upstream.exit_code();
    // The daemon's words for a timeout and for a refused connection
    // (job/http.rs `upstream_error`, job/error.rs `Timeout`).
    if upstream && f.message.contains("timed out") {
        return Some("timed out".into());
    }
    if upstream && a.retry_connrefused && f.message.contains("cannot connect") {
        return Some("connection refused".into());
    }
    a.retry_all_errors.then(|| f.message.clone())
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(head: &JobResponse) -> Option<Duration> {
    let v = head
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("retry-after"))?;
    let v = std::str::from_utf8(&v.value).ok()?.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let when = http_date(v)?;
    Some(when.duration_since(SystemTime::now()).unwrap_or_default())
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form RFC 9110 says
/// senders use.
fn http_date(s: &str) -> Option<SystemTime> {
    let mut it = s.split_whitespace().skip(1);
    let day: i64 = it.next()?.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| Some(*m) == it.clone().next())? as i64
        + 1;
    it.next();
    let year: i64 = it.next()?.parse().ok()?;
    let hms: Vec<i64> = it
        .next()?
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if hms.len() != 3 || it.next() != Some("GMT") {
        return None;
    }
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + hms[0] * 3600 + hms[1] * 60 + hms[2];
    u64::try_from(secs)
        .ok()
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
}

/// Counts bytes read through it (`%{size_upload}`).
struct Counted<R> {
    inner: R,
    n: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

fn attempt(
    a: &RequestArgs,
    plan: &Plan,
    timeout_ms: Option<u64>,
    connect: &impl Fn() -> Result<Client, Failure>,
) -> Attempt {
    let started = Instant::now();
    let mut info = Info::default();
    let mut head = None;
    let result = transfer(a, plan, timeout_ms, connect, &mut info, &mut head, started);
    info.time_total = started.elapsed().as_secs_f64();
    Attempt { result, head, info }
}

#[allow(clippy::too_many_arguments)]
fn transfer(
    a: &RequestArgs,
    plan: &Plan,
    timeout_ms: Option<u64>,
    connect: &impl Fn() -> Result<Client, Failure>,
    info: &mut Info,
    head_out: &mut Option<JobResponse>,
    started: Instant,
) -> Result<u8, Failure> {
    let mode = progress::Mode {
        silent: a.silent,
        forced: a.progress,
    };
    let headers = plan.headers.clone();
    let uploaded = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut body_len = None;
    let (inline, streamed) = match &plan.body {
        None => (None, None),
        Some(spec) => match spec.inline() {
            Some(b) => {
                info.size_upload = b.len() as u64;
                (Some(b), None)
            }
            None => {
                let size = spec.size();
                let mut r = Counted {
                    inner: spec.open()?,
                    n: uploaded.clone(),
                };
                // A small body goes inline, so it is sent with a
                // Content-Length as curl sends it (a streamed one goes
                // chunked); a large one streams with flat memory.
                let mut first = Vec::new();
                let inline_max = if spec.chunked { 0 } else { INLINE_MAX };
                (&mut r)
                    .take(inline_max as u64 + 1)
                    .read_to_end(&mut first)
                    .map_err(|e| Failure::usage(format!("cannot read the body: {e}")))?;
                if first.len() <= inline_max && !spec.chunked {
                    info.size_upload = first.len() as u64;
                    (Some(first), None)
                } else {
                    // A file's length is known: vaultd then sends it with a
                    // Content-Length, as curl does (stdin goes chunked).
                    body_len = size.filter(|_| !spec.chunked);
                    let r = std::io::Cursor::new(first).chain(r);
                    let r: Box<dyn Read + Send> = match progress::bar(mode, size, "upload") {
                        Some(pb) => Box::new(pb.wrap_read(r)),
                        None => Box::new(r),
                    };
                    (None, Some(r))
                }
            }
        },
    };
    let job = JobRequest {
        credential: a.name.clone(),
        method: plan.method.clone(),
        url: plan.url.clone(),
        headers,
        body: inline,
        follow_redirects: a.location,
        timeout_ms,
    };
    info.url_effective = plan.url.clone();
    let mut client = connect()?;
    let resp = client.stream_job_sized(job, streamed, body_len);
    let mut resp = resp?;
    info.time_starttransfer = started.elapsed().as_secs_f64();
    info.status = resp.head.status;
    info.url_effective = resp.head.url.clone();
    info.headers = resp.head.headers.clone();
    info.num_redirects = resp.head.redirects;
    if a.verbose {
        verbose(&resp.head);
    }
    *head_out = Some(resp.head.clone());
    let failed = resp.head.status >= 400;
    if a.fail && failed {
        // Dropping the connection cancels the transfer of the body.
        return Err(http_error(resp.head.status));
    }
    if a.print == Some(PrintAs::Json) {
        let mut head = resp.head.clone();
        while let Some(c) = resp.next_chunk()? {
            if head.body.len() + c.len() > proto::MAX_BODY {
                return Err(Failure::usage(format!(
                    "--print json holds the body in memory: more than {} MiB; use -o FILE",
                    proto::MAX_BODY >> 20
                )));
            }
            head.body.extend_from_slice(&c);
        }
        info.size_download = head.body.len() as u64;
        println!("{}", response_json(&head));
        if a.fail_with_body && failed {
            return Err(http_error(head.status));
        }
        return Ok(0);
    }
    let remote = a.remote_name.then(|| remote_name(&plan.url)).transpose()?;
    let to_file = remote
        .as_ref()
        .or(a.output.as_ref())
        .filter(|p| p.as_os_str() != "-");
    if let (true, Some(dir)) = (a.create_dirs, to_file.and_then(|p| p.parent())) {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::usage(format!("cannot create {}: {e}", dir.display())))?;
        }
    }
    let mut out: Box<dyn Write> = match to_file {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).map_err(
            |e| Failure::usage(format!("cannot write {}: {e}", p.display())),
        )?)),
        None => Box::new(std::io::stdout().lock()),
    };
    let werr = |e: std::io::Error| Failure::usage(format!("cannot write the response: {e}"));
    if let Some(d) = &a.dump_header {
        if d.as_os_str() == "-" {
            write_head(&mut std::io::stdout().lock(), &resp.head).map_err(werr)?;
        } else {
            let mut f = std::fs::File::create(d)
                .map_err(|e| Failure::usage(format!("cannot write {}: {e}", d.display())))?;
            write_head(&mut f, &resp.head).map_err(werr)?;
        }
    }
    if a.include || a.head {
        write_head(&mut *out, &resp.head).map_err(werr)?;
    }
    let length = resp
        .head
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(&h.value)
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()
        });
    let pb = progress::bar(mode, length, "download");
    while let Some(c) = resp.next_chunk()? {
        out.write_all(&c).map_err(werr)?;
        if a.no_buffer {
            out.flush().map_err(werr)?;
        }
        info.size_download += c.len() as u64;
        if let Some(pb) = &pb {
            pb.inc(c.len() as u64);
        }
    }
    out.flush().map_err(werr)?;
    if let Some(pb) = pb {
        pb.finish();
    }
    info.size_upload = info
        .size_upload
        .max(uploaded.load(std::sync::atomic::Ordering::Relaxed));
    if a.fail_with_body && failed {
        return Err(http_error(resp.head.status));
    }
    Ok(0)
}

/// `-O`: the URL's last path segment, as curl names the file (curl
/// refuses an empty one too).
fn remote_name(url: &str) -> Result<std::path::PathBuf, Failure> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let after_scheme = path.find("://").map_or(0, |i| i + 3);
    let name = path[after_scheme..]
        .split_once('/')
        .and_then(|(_, p)| p.rsplit('/').next())
        .unwrap_or("");
    if name.is_empty() {
        return Err(Failure::usage(
            "-O: the URL has no file name to write to; use -o FILE",
        ));
    }
    Ok(name.into())
}

fn http_error(status: u16) -> Failure {
    Failure {
        code: HTTP_ERROR,
        message: format!("the requested URL returned error: {status}"),
    }
}

/// `-v`: the request as vaultd sent it and the response head, with curl's
/// `> ` and `< ` prefixes, on stderr. Both come from vaultd, which put a
/// placeholder in place of the credential and redacted the rest.
fn verbose(head: &JobResponse) {
    let mut e = std::io::stderr().lock();
    if let Some(sent) = &head.sent {
        let _ = write!(
            e,
            "> {} {} {}\r\n",
            sent.method, sent.target, sent.http_version
        );
        for h in &sent.headers {
            let _ = write!(e, "> {}: ", h.name);
            let _ = e.write_all(&h.value);
            let _ = e.write_all(b"\r\n");
        }
        let _ = e.write_all(b">\r\n");
    }
    let mut text = Vec::new();
    let _ = write_head(&mut text, head);
    for line in text.split_inclusive(|&b| b == b'\n') {
        let _ = e.write_all(b"< ");
        let _ = e.write_all(line);
    }
}

/// The status line and headers as curl -i prints them.
pub fn write_head(out: &mut dyn Write, head: &JobResponse) -> std::io::Result<()> {
    write!(out, "{} {}", head.http_version, head.status)?;
    if !head.reason.is_empty() {
        write!(out, " {}", head.reason)?;
    }
    out.write_all(b"\r\n")?;
    for h in &head.headers {
        write!(out, "{}: ", h.name)?;
        out.write_all(&h.value)?;
        out.write_all(b"\r\n")?;
    }
    out.write_all(b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_date_parses_imf_fixdate() {
        let t = http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            784111777
        );
        assert!(http_date("yesterday").is_none());
    }
}
