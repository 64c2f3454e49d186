//! Large bodies stream through both processes with flat memory.

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use harness::upstream::{file_sha256, generated_file};
use harness::{Daemon, Upstream, canary, count};

const GIB: u64 = 1 << 30;

fn vm_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Runs vaultctl, sampling its peak RSS (VmHWM) and the daemon's RSS
/// (VmRSS: its high-water mark includes Argon2id's 64 MiB at `init`) until
/// it exits. Returns (code, stdout, stderr, vaultctl peak, vaultd peak).
fn run_measured(cmd: &mut Command, daemon: u32) -> (i32, Vec<u8>, String, u64, u64) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let (mut peak, mut dpeak) = (0, 0);
            while !done.load(Ordering::Relaxed) {
                if let Some(v) = vm_kib(pid, "VmHWM:") {
                    peak = peak.max(v);
                }
                if let Some(v) = vm_kib(daemon, "VmRSS:") {
                    dpeak = dpeak.max(v);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (peak, dpeak)
        })
    };
    let out = child.wait_with_output().expect("wait");
    done.store(true, Ordering::Relaxed);
    let (peak, dpeak) = sampler.join().unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        peak,
        dpeak,
    )
}

#[test]
fn one_gib_round_trip_with_flat_memory() {
    let up = Upstream::plain();
    let d = Daemon::start("max_body = \"2GiB\"\nrequest_timeout = \"10m\"\n");
    d.init();
    d.add("big", &canary("t"), &["--bearer", "--origin", &up.origin()])
        .ok();
    let file = d.path("upload.bin");
    let sha = generated_file(&file, GIB);

    let t = Instant::now();
    let (code, stdout, stderr, ctl_up, d_up) = run_measured(
        d.cmd().args([
            "request",
            "big",
            &up.url("/sink"),
            "-H",
            "Content-Type: application/octet-stream",
            "-d",
            &format!("@{}", file.display()),
        ]),
        d.pid(),
    );
    let up_secs = t.elapsed().as_secs_f64();
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(v["len"], GIB);
    assert_eq!(v["sha256"], sha.as_str());
    std::fs::remove_file(&file).unwrap();

    let dest = d.path("download.bin");
    let t = Instant::now();
    let (code, _, stderr, ctl_down, d_down) = run_measured(
        d.cmd().args([
            "request",
            "big",
            &up.url(&format!("/source?n={GIB}")),
            "-o",
            dest.to_str().unwrap(),
        ]),
        d.pid(),
    );
    let down_secs = t.elapsed().as_secs_f64();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(std::fs::metadata(&dest).unwrap().len(), GIB);
    assert_eq!(file_sha256(&dest), sha, "downloaded bytes differ");
    std::fs::remove_file(&dest).unwrap();

    let daemon_peak = d_up.max(d_down);
    println!(
        "1 GiB: upload {up_secs:.1} s, download {down_secs:.1} s; peak RSS vaultctl {} / {} MiB, vaultd {} MiB",
        ctl_up / 1024,
        ctl_down / 1024,
        daemon_peak / 1024
    );
    assert!(ctl_up < 64 * 1024, "vaultctl upload peak {ctl_up} KiB");
    assert!(
        ctl_down < 64 * 1024,
        "vaultctl download peak {ctl_down} KiB"
    );
    assert!(daemon_peak < 64 * 1024, "vaultd peak {daemon_peak} KiB");
}

#[test]
fn echo_split_across_chunks_is_redacted() {
    let up = Upstream::plain();
    let d = Daemon::start("");
    d.init();
    let token = canary("split");
    d.add(
        "m",
        &token,
        &["--preset", "microreact", "--origin", &up.origin()],
    )
    .ok();
    // The token straddles the 256 KiB chunk boundaries of the streamed response.
    let mut body = vec![b'.'; 3 * 262_144];
    for at in [262_144 - 7, 2 * 262_144 - 20] {
        body[at..at + token.len()].copy_from_slice(token.as_bytes());
    }
    let file = d.path("body.bin");
    std::fs::write(&file, &body).unwrap();
    let out = d
        .ctl(&[
            "request",
            "m",
            &up.url("/bytes"),
            "-d",
            &format!("@{}", file.display()),
        ])
        .ok();
    assert_eq!(count(&out.stdout, token.as_bytes()), 0);
    assert_eq!(count(&out.stdout, b"[redacted]"), 2);
}

#[test]
fn client_disconnect_cancels_the_upstream_transfer() {
    let up = Upstream::plain();
    let d = Daemon::start("max_body = \"100GiB\"\n");
    d.init();
    d.add("m", &canary("t"), &["--bearer", "--origin", &up.origin()])
        .ok();
    let mut child = d
        .cmd()
        .args([
            "request",
            "m",
            &up.url("/source?n=50000000000"),
            "-o",
            "/dev/null",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while up.produced.load(Ordering::Relaxed) < 64 << 20 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "download never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Once the daemon notices, the upstream stops producing.
    std::thread::sleep(Duration::from_millis(1500));
    let a = up.produced.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(1000));
    let b = up.produced.load(Ordering::Relaxed);
    assert_eq!(a, b, "upstream still sending after the client went away");
    d.ctl(&["status"]).ok();
}

#[test]
fn progress_bar_on_terminals_or_when_forced_never_on_pipes() {
    let up = Upstream::plain();
    let d = Daemon::start("");
    d.init();
    d.add("m", &canary("t"), &["--bearer", "--origin", &up.origin()])
        .ok();
    let url = up.url("/source?n=3000000");
    let piped = d.ctl(&["request", "m", &url, "-o", "/dev/null"]).ok();
    assert!(piped.stderr.is_empty(), "bar on a pipe: {}", piped.stderr);
    let forced = d
        .ctl(&["request", "m", &url, "-o", "/dev/null", "--progress"])
        .ok();
    assert!(forced.stderr.contains("download"), "{}", forced.stderr);
    assert!(forced.stderr.contains("MiB"), "{}", forced.stderr);
    d.ctl(&["request", "m", &url, "-s", "--progress"]).code(1);
    // On a terminal (a pty from script(1)), the bar shows by itself; -s hides it.
    if Command::new("script").arg("--version").output().is_err() {
        println!("skipped the terminal case: script(1) is not installed");
        return;
    }
    let ctl = harness::bin("vaultctl");
    let line = |extra: &str| {
        format!(
            "VAULTD_SOCKET={} {} request m '{url}' -o /dev/null {extra}",
            d.socket.display(),
            ctl.display()
        )
    };
    let tty = Command::new("script")
        .args(["-qec", &line(""), "/dev/null"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&tty.stdout);
    assert!(text.contains("download"), "no bar on a terminal: {text}");
    let quiet = Command::new("script")
        .args(["-qec", &line("-s"), "/dev/null"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&quiet.stdout).contains("download"));
}

/// An upstream that answers before it has read the upload (a 401 on the
/// headers alone) gets its answer relayed, and the rest of the upload is
/// not passed off as a complete body: vaultd used to end the chunked body
/// cleanly when the job stopped pumping, so the upstream saw a truncated
/// upload as whole.
#[test]
fn an_early_answer_is_relayed_and_the_cut_upload_never_looks_complete() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 65536];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "closed before the head");
            seen.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 5\r\n\r\nnope\n")
            .unwrap();
        // Then read what else comes, until the connection ends.
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        seen
    });
    let d = Daemon::start("");
    d.init();
    d.add("up", &canary("early"), &["--bearer", "--origin", &origin])
        .ok();
    let path = d.path("big.bin");
    generated_file(&path, 200 << 20);
    let out = d.ctl(&[
        "request",
        "up",
        &format!("{origin}/upload"),
        "--data-binary",
        &format!("@{}", path.display()),
    ]);
    let seen = server.join().unwrap();
    assert_eq!(
        out.stdout, b"nope\n",
        "the early answer was not relayed: {out:?}"
    );
    assert!(
        !seen.ends_with(b"\r\n0\r\n\r\n"),
        "the upstream got a complete-looking chunked body ({} bytes) of a 200 MiB upload that was cut short",
        seen.len()
    );
}

/// `-F name=@FILE` and `-T FILE` stream a 1 GiB file with flat memory:
/// vaultctl composes the multipart framing around the file as it reads it.
#[test]
fn one_gib_form_field_and_upload_file_with_flat_memory() {
    let up = Upstream::plain();
    let d = Daemon::start("max_body = \"2GiB\"\nrequest_timeout = \"10m\"\n");
    d.init();
    d.add("big", &canary("t"), &["--bearer", "--origin", &up.origin()])
        .ok();
    let file = d.path("field.bin");
    let sha = generated_file(&file, GIB);
    let form = format!("file=@{};type=application/octet-stream", file.display());
    let (code, stdout, stderr, ctl_form, d_form) = run_measured(
        d.cmd().args([
            "request",
            "big",
            &up.url("/sink"),
            "-F",
            "note=hi",
            "-F",
            &form,
        ]),
        d.pid(),
    );
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    let len = v["len"].as_u64().unwrap();
    assert!(len > GIB && len < GIB + 1024, "multipart length {len}");
    let (code, stdout, stderr, ctl_put, d_put) = run_measured(
        d.cmd().args([
            "request",
            "big",
            &up.url("/sink"),
            "-T",
            file.to_str().unwrap(),
        ]),
        d.pid(),
    );
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(v["len"], GIB);
    assert_eq!(v["sha256"], sha.as_str());
    assert_eq!(up.requests().last().unwrap().method, "PUT");
    std::fs::remove_file(&file).unwrap();
    println!(
        "1 GiB: peak RSS vaultctl -F {} / -T {} MiB, vaultd {} MiB",
        ctl_form / 1024,
        ctl_put / 1024,
        d_form.max(d_put) / 1024
    );
    assert!(ctl_form < 64 * 1024, "vaultctl -F peak {ctl_form} KiB");
    assert!(ctl_put < 64 * 1024, "vaultctl -T peak {ctl_put} KiB");
    assert!(d_form.max(d_put) < 64 * 1024, "vaultd peak");
}
