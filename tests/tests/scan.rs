//! `vaultctl scan` (issue 14): vaultd finds copies of stored values in the
//! files vaultctl streams to it, in every form the redactor knows, and
//! answers where they are, never what. Each security claim of the issue
//! has a test here: no value in vaultctl's output, stderr, the daemon's
//! log (the harness checks every canary) or vaultctl's memory; hostile
//! files neither stall nor crash; a session is capped in bytes and time;
//! a locked vault is exit 3.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use harness::{Daemon, Out, canary};

/// A daemon with one credential per `(name, value)`.
fn daemon(creds: &[(&str, &str)]) -> Daemon {
    let d = Daemon::start("");
    d.init();
    for (name, value) in creds {
        d.add(name, value, &["--preset", "microreact"]).ok();
    }
    d
}

/// `vaultctl ARGS` run in `cwd` with `HOME=home`.
fn scan_in(d: &Daemon, cwd: &Path, home: &Path, args: &[&str]) -> Out {
    let mut c = d.cmd();
    c.current_dir(cwd).env("HOME", home).args(args);
    let out = harness::daemon::run(&mut c, None);
    let hits = harness::leaks(&out.stdout);
    assert!(
        hits.is_empty(),
        "a value in scan's stdout:\n{}",
        hits.join("\n")
    );
    out
}

/// `vaultctl scan ARGS` in the daemon's temp dir.
fn scan(d: &Daemon, args: &[&str]) -> Out {
    let mut all = vec!["scan"];
    all.extend_from_slice(args);
    scan_in(d, d.dir(), d.dir(), &all)
}

fn write(path: &Path, data: &[u8]) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(path, data).unwrap();
}

/// Every character percent-encoded except letters and digits.
fn percent_all(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn json_u_all(s: &str) -> String {
    s.chars().map(|c| format!("\\u{:04x}", c as u32)).collect()
}

#[test]
fn every_form_the_redactor_knows_is_found_on_its_line() {
    // `?~` make base64 and base64url differ, and percent-encoding change it.
    let token = format!("{}?~?~>>", canary("scanform"));
    let b64 = STANDARD.encode(&token);
    let b64url = URL_SAFE_NO_PAD.encode(&token);
    assert!(
        b64.contains(['+', '/']),
        "{b64}: base64url would equal base64"
    );
    let other = canary("scanother");
    let d = daemon(&[("tok", &token), ("other", &other)]);
    let mut text = String::from("nothing here\n");
    let lines = [
        (format!("export TOKEN={token}"), "raw"),
        (format!("b64={b64}"), "base64"),
        (format!("b64url={b64url}"), "base64url"),
        // Inside a larger base64 blob, at each of the three alignments.
        (STANDARD.encode(format!("a{token}z")), "base64"),
        (STANDARD.encode(format!("ab{token}z")), "base64"),
        (STANDARD.encode(format!("abc{token}z")), "base64"),
        (format!("GET /x?t={}", percent_all(&token)), "percent"),
        (
            format!("{{\"t\": \"{}\"}}", json_u_all(&token)),
            "json-escape",
        ),
        (format!("other={other}"), "raw"),
    ];
    for (l, _) in &lines {
        text.push_str(l);
        text.push('\n');
    }
    text.push_str("the end\n");
    write(&d.path("forms.txt"), text.as_bytes());
    let out = scan(&d, &["forms.txt"]).code(8);
    let expected: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, (_, form))| {
            let name = if i == lines.len() - 1 { "other" } else { "tok" };
            format!("forms.txt:{}: credential {name} ({form})", i + 2)
        })
        .collect();
    assert_eq!(out.text().lines().collect::<Vec<_>>(), expected);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
}

#[test]
fn copies_cut_by_chunk_boundaries_are_found_with_their_line_numbers() {
    let token = canary("scanchunk");
    let d = daemon(&[("tok", &token)]);
    // vaultctl sends the first 8 KiB, then pieces of proto::CHUNK bytes.
    let cuts = [
        8 * 1024,
        8 * 1024 + proto::CHUNK,
        8 * 1024 + 2 * proto::CHUNK,
    ];
    let mut body: Vec<u8> = Vec::new();
    let mut want = Vec::new();
    for (i, cut) in cuts.iter().enumerate() {
        while body.len() < cut - 10 - i {
            body.extend_from_slice(if body.len() % 3 == 0 {
                b"some line\n"
            } else {
                b"x"
            });
        }
        body.truncate(cut - 10 - i);
        let form = if i == 1 {
            STANDARD.encode(&token)
        } else {
            token.clone()
        };
        let line = body.iter().filter(|&&b| b == b'\n').count() + 1;
        want.push(format!(
            "big.txt:{line}: credential tok ({})",
            if i == 1 { "base64" } else { "raw" }
        ));
        body.extend_from_slice(form.as_bytes());
        body.extend_from_slice(b"\nafter\n");
    }
    write(&d.path("big.txt"), &body);
    let out = scan(&d, &["big.txt"]).code(8);
    assert_eq!(out.text().lines().collect::<Vec<_>>(), want);
}

#[test]
fn default_places_under_home_and_the_current_directory() {
    let token = canary("scandefault");
    let d = daemon(&[("tok", &token)]);
    let home = d.path("home");
    let line = format!("curl -H 'Access-Token: {token}' https://microreact.org\n");
    let found = [
        ".bash_history",
        ".zsh_history",
        ".python_history",
        ".local/share/fish/fish_history",
        ".bashrc",
        ".profile",
        ".zshrc",
        ".config/fish/config.fish",
        ".netrc",
        ".config/tool/settings.toml",
        ".config/deep/er/still.json",
    ];
    for f in found {
        write(&home.join(f), line.as_bytes());
    }
    // Not scanned: an ordinary home file, a symlink out of ~/.config,
    // a binary file in ~/.config.
    write(&home.join("notes.txt"), line.as_bytes());
    write(&d.path("outside/secret.txt"), line.as_bytes());
    std::os::unix::fs::symlink(d.path("outside/secret.txt"), home.join(".config/link.txt"))
        .unwrap();
    let mut bin = b"\0\x01binary".to_vec();
    bin.extend_from_slice(line.as_bytes());
    write(&home.join(".config/tool/cache.bin"), &bin);
    // The current directory: .env files and git working trees, not .git.
    let cwd = d.path("work");
    write(&cwd.join(".env"), format!("TOKEN={token}\n").as_bytes());
    write(
        &cwd.join("app/.env.local"),
        format!("TOKEN={token}\n").as_bytes(),
    );
    write(&cwd.join("repo/src/config.py"), line.as_bytes());
    write(&cwd.join("repo/.git/config"), line.as_bytes());
    write(&cwd.join("plain/readme.txt"), line.as_bytes());
    let out = scan_in(&d, &cwd, &home, &["scan"]).code(8);
    let mut got: Vec<String> = out
        .text()
        .lines()
        .map(|l| l.split(':').next().unwrap().to_owned())
        .collect();
    got.sort();
    let mut want: Vec<String> = found
        .iter()
        .map(|f| home.join(f).display().to_string())
        .chain(["./.env", "./app/.env.local", "./repo/src/config.py"].map(String::from))
        .collect();
    want.sort();
    assert_eq!(got, want, "stderr: {}", out.stderr);
    // The same with --json: the symlink out of the tree and the binary
    // file are listed as skipped, with a reason.
    let out = scan_in(&d, &cwd, &home, &["scan", "--json"]).code(8);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let skipped = v["skipped"].as_array().unwrap();
    let reason_of = |p: &Path| {
        skipped
            .iter()
            .find(|s| s["path"] == p.display().to_string())
            .map(|s| s["reason"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        reason_of(&home.join(".config/link.txt")).as_deref(),
        Some("symlink out of the scanned tree")
    );
    assert!(
        reason_of(&home.join(".config/tool/cache.bin"))
            .unwrap()
            .starts_with("binary")
    );
}

#[test]
fn json_schema_is_stable() {
    let token = canary("scanjson");
    let d = daemon(&[("tok", &token)]);
    write(&d.path("dir/a.txt"), format!("x\ny {token}\n").as_bytes());
    write(&d.path("dir/b.txt"), b"clean\n");
    write(&d.path("dir/c.bin"), b"\0\0\0");
    let out = scan(&d, &["--json", "dir"]).code(8);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "bytes_scanned",
            "files_scanned",
            "findings",
            "rewritten",
            "skipped"
        ]
    );
    assert_eq!(v["files_scanned"], 2);
    assert_eq!(v["bytes_scanned"], (4 + token.len() + 1 + 6) as u64);
    assert_eq!(
        v["findings"],
        serde_json::json!([{
            "path": "dir/a.txt", "line": 2, "credential": "tok", "form": "raw",
            "offset": 4, "length": token.len(),
        }])
    );
    assert_eq!(
        v["skipped"],
        serde_json::json!([{"path": "dir/c.bin", "reason": "binary (a NUL byte in its first 8 KiB)"}])
    );
    assert_eq!(v["rewritten"], serde_json::json!([]));
    // Nothing found: exit 0, the same keys.
    let out = scan(&d, &["--json", "dir/b.txt"]).ok();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["findings"], serde_json::json!([]));
    assert_eq!(v["files_scanned"], 1);
}

#[test]
fn exit_codes_0_nothing_8_found_3_locked() {
    let token = canary("scanexit");
    let d = daemon(&[("tok", &token)]);
    write(&d.path("clean.txt"), b"nothing\n");
    write(&d.path("dirty.txt"), format!("{token}\n").as_bytes());
    let out = scan(&d, &["clean.txt"]).ok();
    assert!(out.stdout.is_empty());
    scan(&d, &["dirty.txt", "clean.txt"]).code(8);
    d.ctl(&["lock"]).ok();
    let out = scan(&d, &["dirty.txt"]).code(3);
    assert!(out.stderr.starts_with("vaultctl: "), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    // --redact needs explicit paths.
    let out = scan(&d, &["--redact"]).code(1);
    assert!(out.stderr.starts_with("vaultctl: "), "{}", out.stderr);
}

#[test]
fn redact_rewrites_atomically_keeping_mode_and_every_other_byte() {
    let token = format!("{}/+=", canary("scanredact"));
    let other = canary("scanredact2");
    let d = daemon(&[("tok", &token), ("second", &other)]);
    let path = d.path("project/.env");
    let pieces: Vec<(Vec<u8>, Option<&str>)> = vec![
        (b"# keep this comment\nTOKEN=".to_vec(), None),
        (token.clone().into_bytes(), Some("tok")),
        (b"\nBASIC=".to_vec(), None),
        (STANDARD.encode(&token).into_bytes(), Some("tok")),
        (b"\nURL=https://x.example/?t=".to_vec(), None),
        (percent_all(&token).into_bytes(), Some("tok")),
        (b"&y=1\nOTHER=\"".to_vec(), None),
        (other.clone().into_bytes(), Some("second")),
        (b"\"\n\xff\xfe odd bytes stay\n".to_vec(), None),
    ];
    let original: Vec<u8> = pieces.iter().flat_map(|(b, _)| b.clone()).collect();
    let expected: Vec<u8> = pieces
        .iter()
        .flat_map(|(b, name)| match name {
            Some(n) => format!("<tokenvault:{n}>").into_bytes(),
            None => b.clone(),
        })
        .collect();
    write(&path, &original);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let ino = std::fs::metadata(&path).unwrap().ino();
    let out = scan(&d, &["--redact", "project/.env"]).ok();
    assert_eq!(out.text().lines().count(), 4, "{}", out.text());
    assert_eq!(std::fs::read(&path).unwrap(), expected);
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    assert_ne!(meta.ino(), ino, "rewritten in place, not renamed over");
    let names: Vec<_> = std::fs::read_dir(d.path("project")).unwrap().collect();
    assert_eq!(names.len(), 1, "a temporary file was left behind");
    // Nothing left to find.
    scan(&d, &["project/.env"]).ok();
    // A history file gets the note about running shells.
    let hist = d.path(".bash_history");
    write(&hist, format!("ls\nexport T={token}\n").as_bytes());
    let out = scan(&d, &["--redact", ".bash_history"]).ok();
    assert!(
        out.stderr.contains("history -c") && out.stderr.contains("fc -p"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read(&hist).unwrap(),
        b"ls\nexport T=<tokenvault:tok>\n"
    );
}

/// vaultctl with its stdout a pipe that is already full, so that it
/// blocks writing its first finding: after the file was scanned (and,
/// with `--redact`, before it is rewritten). The test then looks at the
/// process (its memory, the file) and lets it go by draining the pipe.
struct Paused {
    child: Child,
    reader: std::fs::File,
}

impl Paused {
    fn start(d: &Daemon, args: &[&str]) -> Paused {
        // A FIFO rather than `std::io::pipe` (Rust 1.87, above the MSRV).
        let fifo = d.path(&format!("stdout-{}.fifo", args.len()));
        let _ = std::fs::remove_file(&fifo);
        assert!(
            Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let nonblock = rustix::fs::OFlags::NONBLOCK;
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nonblock.bits() as i32)
            .open(&fifo)
            .unwrap();
        let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        rustix::fs::fcntl_setfl(&reader, rustix::fs::OFlags::empty()).unwrap();
        rustix::fs::fcntl_setfl(&writer, nonblock).unwrap();
        for size in [4096, 1] {
            while writer.write(&vec![b'.'; size]).is_ok() {}
        }
        rustix::fs::fcntl_setfl(&writer, rustix::fs::OFlags::empty()).unwrap();
        let child = d
            .cmd()
            .current_dir(d.dir())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let wchan = format!("/proc/{}/wchan", child.id());
        while !std::fs::read_to_string(&wchan)
            .unwrap_or_default()
            .contains("pipe_write")
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "vaultctl never blocked on stdout"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Paused { child, reader }
    }

    /// Lets it finish; its exit code, stdout (without the filler) and stderr.
    fn finish(mut self) -> (i32, String, String) {
        let mut reader = self.reader;
        let drain = std::thread::spawn(move || {
            let mut all = Vec::new();
            reader.read_to_end(&mut all).unwrap();
            all
        });
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = self.child.wait().unwrap();
        let out = drain.join().unwrap();
        let text = String::from_utf8_lossy(&out)
            .trim_start_matches('.')
            .to_owned();
        (status.code().unwrap_or(-1), text, stderr)
    }
}

#[test]
fn redact_is_refused_for_a_file_that_changed_during_the_scan() {
    let token = canary("scanchanged");
    let d = daemon(&[("tok", &token)]);
    let path = d.path("changing.txt");
    write(&path, format!("a\n{token}\n").as_bytes());
    let paused = Paused::start(&d, &["scan", "--redact", "changing.txt"]);
    // Scanned, not yet rewritten: the file changes now.
    let changed = format!("a\n{token}\nappended\n");
    write(&path, changed.as_bytes());
    let (code, stdout, stderr) = paused.finish();
    assert_eq!(code, 8, "{stderr}");
    assert!(
        stdout.contains("changing.txt:2: credential tok (raw)"),
        "{stdout}"
    );
    assert!(stderr.contains("changed during the scan"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), changed);
    assert!(harness::leaks(stderr.as_bytes()).is_empty());
}

#[test]
fn the_scanning_client_never_holds_a_value() {
    if !harness::is_root() {
        println!(
            "SKIPPED the_scanning_client_never_holds_a_value: reading /proc/PID/mem needs root"
        );
        return;
    }
    let token = canary("scanmem");
    let d = daemon(&[("tok", &token)]);
    let b64 = STANDARD.encode(&token);
    let mut body = String::new();
    for i in 0..2000 {
        body.push_str(&format!("line {i} {token} {b64}\n"));
    }
    write(&d.path("many.txt"), body.as_bytes());
    let control = d.path("many.txt").display().to_string();
    let paused = Paused::start(&d, &["scan", &control]);
    let found = harness::memscan::scan(
        paused.child.id(),
        &[token.as_bytes(), b64.as_bytes(), control.as_bytes()],
    )
    .unwrap();
    let (code, stdout, _) = paused.finish();
    assert_eq!(code, 8);
    assert_eq!(stdout.lines().count(), 4000, "raw and base64 on every line");
    assert!(
        found.hits[2] >= 1,
        "the control string was not seen: the scan read nothing ({found:?})"
    );
    assert_eq!(
        found.hits[0], 0,
        "the raw value in vaultctl's memory ({found:?})"
    );
    assert_eq!(
        found.hits[1], 0,
        "the base64 value in vaultctl's memory ({found:?})"
    );
}

/// Runs `cmd` with a deadline; `None` if it had to be killed.
fn run_within(mut cmd: Command, limit: Duration) -> Option<Out> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            return Some(Out {
                code: out.status.code().unwrap_or(-1),
                stdout: out.stdout,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn hostile_files_neither_stall_nor_crash_vaultd() {
    let token = canary("scanhostile");
    let d = daemon(&[("tok", &token)]);
    // A 20 MiB line with the value at its end.
    let mut huge = vec![b'a'; 20 << 20];
    huge.extend_from_slice(token.as_bytes());
    huge.push(b'\n');
    write(&d.path("h/huge.txt"), &huge);
    // NUL bytes after the first 8 KiB: still text, still scanned.
    let mut nul = vec![b'x'; 9000];
    nul.extend_from_slice(b"\0\0\0");
    nul.extend_from_slice(token.as_bytes());
    write(&d.path("h/nul.txt"), &nul);
    // A FIFO nobody writes to, named on the command line and in the tree.
    let fifo = d.path("h/fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let mut cmd = d.cmd();
    cmd.current_dir(d.dir()).args(["scan", "h/fifo", "h"]);
    let out = run_within(cmd, Duration::from_secs(60)).expect("scan hung on a FIFO");
    assert_eq!(out.code, 8, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        b"h/huge.txt:1: credential tok (raw)\nh/nul.txt:1: credential tok (raw)\n"
    );
    assert!(
        out.stderr.contains("h/fifo: skipped: not a regular file"),
        "{}",
        out.stderr
    );
    // 10,000 tiny files, one session: one holds the value.
    for i in 0..10_000 {
        let dir = d.path(&format!("tiny/{}", i / 1000));
        if i % 1000 == 0 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        let data = if i == 4242 {
            format!("{token}\n")
        } else {
            format!("file {i}\n")
        };
        std::fs::write(dir.join(format!("{i}.txt")), data).unwrap();
    }
    let start = Instant::now();
    let mut cmd = d.cmd();
    cmd.current_dir(d.dir()).args(["scan", "--json", "tiny"]);
    let out = run_within(cmd, Duration::from_secs(120)).expect("10,000 files did not finish");
    assert_eq!(out.code, 8, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files_scanned"], 10_000);
    assert_eq!(v["findings"][0]["path"], "tiny/4/4242.txt");
    eprintln!("10,000 tiny files scanned in {:?}", start.elapsed());
    assert!(harness::leaks(&out.stdout).is_empty());
    // vaultd is still there and answers at once.
    let t = Instant::now();
    d.ctl(&["status"]).ok();
    assert!(t.elapsed() < Duration::from_secs(2));
}

/// Connects and exchanges hellos, as a hostile client would.
fn raw_session(d: &Daemon) -> std::os::unix::net::UnixStream {
    use proto::frame::{read_frame, write_frame};
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write_frame(
        &mut s,
        &proto::Hello {
            version: proto::PROTOCOL_VERSION,
        },
    )
    .unwrap();
    let _: proto::Hello = read_frame(&mut s).unwrap().unwrap();
    write_frame(&mut s, &proto::Request::Scan).unwrap();
    let r: proto::Response = read_frame(&mut s).unwrap().unwrap();
    assert!(matches!(r, proto::Response::Done), "{r:?}");
    s
}

#[test]
fn a_scan_session_is_capped_in_bytes_and_time() {
    use proto::frame::{read_frame, write_frame};
    use proto::{Request, Response};
    let d = Daemon::start("max_body = \"1MiB\"\nrequest_timeout = \"2s\"\n");
    d.init();
    let token = canary("scancap");
    d.add("tok", &token, &["--preset", "microreact"]).ok();
    // Bytes: a file over max_body is refused alone; the session goes on.
    write(&d.path("big.txt"), &vec![b'z'; 2 << 20]);
    write(&d.path("small.txt"), format!("{token}\n").as_bytes());
    let out = scan(&d, &["--max-size", "10MiB", "big.txt", "small.txt"]).code(8);
    assert_eq!(out.text(), "small.txt:1: credential tok (raw)\n");
    assert!(
        out.stderr
            .contains("big.txt: skipped: file exceeds vaultd's max_body"),
        "{}",
        out.stderr
    );
    // Time: a client that stops mid-file is cut off after request_timeout,
    // and others are served meanwhile.
    let mut s = raw_session(&d);
    write_frame(&mut s, &Request::ScanFile { id: 1 }).unwrap();
    write_frame(
        &mut s,
        &Request::Chunk(b"some bytes and then nothing".to_vec()),
    )
    .unwrap();
    let start = Instant::now();
    let t = Instant::now();
    d.ctl(&["status"]).ok();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "a stalled scan held up status"
    );
    match read_frame::<_, Response>(&mut s) {
        Ok(Some(Response::Error(e))) => assert!(e.message.contains("not sent within"), "{e}"),
        other => panic!("expected a timeout error, got {other:?}"),
    }
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert!(
        matches!(read_frame::<_, Response>(&mut s), Ok(None) | Err(_)),
        "not closed"
    );
    // Garbage in place of a file: refused and closed, vaultd unharmed.
    let mut s = raw_session(&d);
    write_frame(&mut s, &Request::Status).unwrap();
    assert!(matches!(
        read_frame::<_, Response>(&mut s),
        Ok(Some(Response::Error(_)))
    ));
    d.ctl(&["status"]).ok();
}

#[test]
fn lock_ends_a_scan_session() {
    use proto::frame::{read_frame, write_frame};
    use proto::{Request, Response};
    let token = canary("scanlock");
    let d = daemon(&[("tok", &token)]);
    let mut s = raw_session(&d);
    write_frame(&mut s, &Request::ScanFile { id: 1 }).unwrap();
    write_frame(&mut s, &Request::Chunk(b"half a file".to_vec())).unwrap();
    d.ctl(&["lock"]).ok();
    match read_frame::<_, Response>(&mut s) {
        Ok(Some(Response::Error(e))) => assert_eq!(e.code, proto::ErrorCode::Locked, "{e}"),
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[test]
fn a_file_sent_one_byte_per_frame_is_scanned_whole() {
    use proto::frame::{read_frame, write_frame};
    use proto::{Request, Response};
    let token = canary("scantiny");
    let d = daemon(&[("tok", &token)]);
    let mut s = raw_session(&d);
    let body = format!("first line\n{}\nx={token}\n", "y".repeat(100_000));
    write_frame(&mut s, &Request::ScanFile { id: 9 }).unwrap();
    let start = Instant::now();
    for b in body.bytes() {
        write_frame(&mut s, &Request::Chunk(vec![b])).unwrap();
    }
    write_frame(&mut s, &Request::End).unwrap();
    match read_frame::<_, Response>(&mut s).unwrap() {
        Some(Response::ScanFindings(r)) => {
            assert_eq!(r.id, 9);
            assert_eq!(r.findings.len(), 1, "{r:?}");
            let f = &r.findings[0];
            assert_eq!(
                (f.line, f.form.as_str(), f.len),
                (3, "raw", token.len() as u64)
            );
            assert_eq!(f.offset, (body.len() - token.len() - 1) as u64);
        }
        other => panic!("{other:?}"),
    }
    eprintln!("{} one-byte frames in {:?}", body.len(), start.elapsed());
    write_frame(&mut s, &Request::End).unwrap();
    assert!(matches!(
        read_frame::<_, Response>(&mut s),
        Ok(Some(Response::Done))
    ));
}
