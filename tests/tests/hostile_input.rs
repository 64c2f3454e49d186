//! Bad input on the socket never crashes vaultd or stalls other clients
//! (DESIGN "Security properties" 5): garbage, huge length prefixes,
//! truncated frames, a wrong protocol version, slow and silent clients, and
//! more connections than the cap.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use harness::{Daemon, Upstream, canary};
use proto::frame::{encode_frame, read_frame, write_frame};
use proto::{ErrorCode, Hello, Request, Response};

/// Whole-process time of `vaultctl status`, which must succeed.
fn status_time(d: &Daemon) -> Duration {
    let start = Instant::now();
    let out = d.ctl(&["status", "--json"]).ok();
    let took = start.elapsed();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["pid"].as_u64(),
        Some(u64::from(d.pid())),
        "the same vaultd still answers"
    );
    took
}

#[track_caller]
fn assert_responsive(d: &Daemon, after: &str) {
    let took = status_time(d);
    assert!(
        took < Duration::from_secs(1),
        "status took {took:?} after {after}"
    );
}

/// VmRSS of `pid` in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

fn connect(d: &Daemon) -> UnixStream {
    let s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s
}

/// Reads until the daemon closes; how long that took. Fails on a timeout.
#[track_caller]
fn wait_eof(s: &mut UnixStream) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return start.elapsed();
            }
            Err(e) => panic!("no EOF after {:?}: {e}", start.elapsed()),
        }
    }
}

/// Connects and exchanges hellos.
fn hello(d: &Daemon) -> UnixStream {
    let mut s = connect(d);
    write_frame(
        &mut s,
        &Hello {
            version: proto::PROTOCOL_VERSION,
        },
    )
    .unwrap();
    let theirs: Hello = read_frame(&mut s).unwrap().unwrap();
    assert_eq!(theirs.version, proto::PROTOCOL_VERSION);
    s
}

fn ready() -> (Daemon, Upstream) {
    let up = Upstream::plain();
    let d = Daemon::start("");
    d.init();
    d.add(
        "svc",
        &canary("hostile"),
        &["--header", "X-Token", "--origin", &up.origin()],
    )
    .ok();
    (d, up)
}

#[test]
fn garbage_huge_prefixes_truncated_frames_and_wrong_versions_never_crash_or_stall_vaultd() {
    let (d, up) = ready();
    let pid = d.pid();
    let rss0 = rss(pid);
    assert_responsive(&d, "start");

    // Random garbage instead of a hello.
    let mut junk = vec![0u8; 64 * 1024];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut junk)
        .unwrap();
    let mut s = connect(&d);
    let _ = s.write_all(&junk);
    assert!(wait_eof(&mut s) < Duration::from_secs(2), "closed at once");
    assert_responsive(&d, "garbage");

    // A frame of the right size whose payload is not a Hello.
    let mut s = connect(&d);
    s.write_all(&[0, 0, 0, 16]).unwrap();
    s.write_all(&[0xff; 16]).unwrap();
    assert!(wait_eof(&mut s) < Duration::from_secs(2));
    assert_responsive(&d, "a malformed hello");

    // A 4 GiB length prefix, before and after the hello: refused before
    // allocating anything.
    let mut s = connect(&d);
    s.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
    assert!(wait_eof(&mut s) < Duration::from_secs(2));
    let mut s = hello(&d);
    s.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).unwrap();
    assert!(wait_eof(&mut s) < Duration::from_secs(2));
    assert_responsive(&d, "a 4 GiB length prefix");

    // Truncated frames, then close: in the hello, and in a request.
    let wire = encode_frame(&Hello {
        version: proto::PROTOCOL_VERSION,
    })
    .unwrap();
    for cut in 1..wire.len() {
        let mut s = connect(&d);
        s.write_all(&wire[..cut]).unwrap();
        drop(s);
    }
    let req = encode_frame(&Request::Remove { name: "svc".into() }).unwrap();
    for cut in [1, 3, 4, 5, req.len() - 1] {
        let mut s = hello(&d);
        s.write_all(&req[..cut]).unwrap();
        drop(s);
    }
    assert_responsive(&d, "truncated frames");
    let list = d.ctl(&["list", "--json"]).ok();
    assert!(
        list.text().contains("\"svc\""),
        "a cut Remove removed nothing"
    );

    // A well-framed request that is not a request: answered, and the
    // connection carries on.
    let mut s = hello(&d);
    s.write_all(&[0, 0, 0, 3, 0xfe, 0xfe, 0xfe]).unwrap();
    match read_frame::<_, Response>(&mut s).unwrap() {
        Some(Response::Error(e)) => assert_eq!(e.code, ErrorCode::BadRequest, "{e:?}"),
        other => panic!("expected an error answer, got {other:?}"),
    }
    write_frame(&mut s, &Request::Status).unwrap();
    assert!(matches!(
        read_frame::<_, Response>(&mut s).unwrap(),
        Some(Response::Status(_))
    ));
    drop(s);

    // A Hello of another protocol version: vaultd answers with its own
    // hello and a clear VersionMismatch error, then closes.
    let theirs = proto::PROTOCOL_VERSION + 41;
    let mut s = connect(&d);
    write_frame(&mut s, &Hello { version: theirs }).unwrap();
    let ours: Hello = read_frame(&mut s).unwrap().unwrap();
    assert_eq!(ours.version, proto::PROTOCOL_VERSION);
    match read_frame::<_, Response>(&mut s).unwrap() {
        Some(Response::Error(e)) => {
            assert_eq!(e.code, ErrorCode::VersionMismatch);
            assert!(
                e.message.contains(&theirs.to_string())
                    && e.message.contains(&proto::PROTOCOL_VERSION.to_string()),
                "{}",
                e.message
            );
        }
        other => panic!("expected VersionMismatch, got {other:?}"),
    }
    assert!(wait_eof(&mut s) < Duration::from_secs(2));
    assert!(
        d.log().contains(&format!("speaks protocol {theirs}")),
        "{}",
        d.log()
    );
    assert_responsive(&d, "a wrong protocol version");

    // A slow client: announces a 60 MiB frame and trickles bytes. Memory
    // follows the bytes that arrived, not the announced size.
    let mut slow = hello(&d);
    slow.write_all(&(60u32 << 20).to_be_bytes()).unwrap();
    for _ in 0..5 {
        slow.write_all(&[0u8; 100]).unwrap();
        assert_responsive(&d, "a trickling client");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Still the same process, still doing its job, memory bounded.
    d.ctl(&["request", "svc", &up.url("/echo"), "-f"]).ok();
    let grown = rss(pid).saturating_sub(rss0);
    eprintln!("VmRSS growth over the hostile inputs: {} KiB", grown / 1024);
    assert!(grown < 32 << 20, "VmRSS grew by {grown} bytes");
    drop(slow);
    assert_eq!(d.pid(), pid);
}

#[test]
fn five_hundred_silent_connections_neither_stall_clients_nor_grow_memory() {
    let (d, _up) = ready();
    let pid = d.pid();
    assert_responsive(&d, "start");
    let rss0 = rss(pid);
    let opened = Instant::now();
    let mut silent: Vec<UnixStream> = (0..500).map(|_| connect(&d)).collect();
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        worst = worst.max(status_time(&d));
    }
    let grown = rss(pid).saturating_sub(rss0);
    eprintln!(
        "500 silent connections: worst status {worst:?}, VmRSS growth {} KiB",
        grown / 1024
    );
    assert!(
        opened.elapsed() < Duration::from_secs(4),
        "measured while all 500 were still open (hello timeout 5 s)"
    );
    assert!(
        worst < Duration::from_secs(1),
        "status took {worst:?} under 500 idle connections"
    );
    assert!(grown < 32 << 20, "VmRSS grew by {grown} bytes");
    // Not one of them was refused for being over the cap (default 1024)...
    assert!(!d.log().contains("connection limit"), "{}", d.log());
    // ...and each is closed by the hello timeout.
    for s in &mut silent {
        wait_eof(s);
    }
    let waited = opened.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(12),
        "closed after {waited:?}, hello timeout is 5 s"
    );
    assert_responsive(&d, "the silent connections closed");
}

#[test]
fn silent_and_idle_connections_get_eof_after_their_timeouts() {
    let d = Daemon::start("hello_timeout = \"1s\"\nidle_timeout = \"2s\"\n");
    // Never says hello.
    let mut s = connect(&d);
    let took = wait_eof(&mut s);
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(4),
        "no-hello connection closed after {took:?}, hello_timeout is 1 s"
    );
    // Says hello, asks once, then goes quiet.
    let mut s = hello(&d);
    write_frame(&mut s, &Request::Status).unwrap();
    assert!(matches!(
        read_frame::<_, Response>(&mut s).unwrap(),
        Some(Response::Status(_))
    ));
    let took = wait_eof(&mut s);
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(6),
        "idle connection closed after {took:?}, idle_timeout is 2 s"
    );
    let log = d.log();
    assert!(log.contains("no hello within 1s"), "{log}");
    assert!(log.contains("idle for 2s"), "{log}");
}

#[test]
fn connection_cap_is_logged_and_clients_are_served_again_after_the_hello_timeout() {
    let d = Daemon::start("max_connections = 16\nhello_timeout = \"2s\"\n");
    // Let the harness's readiness probe's connection end first.
    std::thread::sleep(Duration::from_millis(200));
    let opened = Instant::now();
    let mut idle: Vec<UnixStream> = (0..40).map(|_| connect(&d)).collect();
    // The 24 over the cap are told why at once, without being read. Sweep
    // until all of them have answered (a loaded machine may take a moment).
    let mut busy = 0;
    let mut answered = vec![false; idle.len()];
    let sweep_until = Instant::now() + Duration::from_secs(3);
    while busy < 24 && Instant::now() < sweep_until {
        for (s, done) in idle.iter_mut().zip(answered.iter_mut()) {
            if *done {
                continue;
            }
            // The served ones wait for our hello: nothing to read there.
            s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
            if let Ok(Some(h)) = read_frame::<_, Hello>(s) {
                assert_eq!(h.version, proto::PROTOCOL_VERSION);
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                match read_frame::<_, Response>(s) {
                    Ok(Some(Response::Error(e))) => {
                        assert!(e.message.contains("busy"), "{}", e.message);
                        busy += 1;
                        *done = true;
                    }
                    other => panic!("expected a busy answer, got {other:?}"),
                }
            }
        }
    }
    assert_eq!(busy, 24, "16 served, the rest refused");
    let log = d.log();
    assert!(
        log.contains("connection limit (16, max_connections) reached"),
        "{log}"
    );
    // A real client now is turned away too, with a clear line...
    if opened.elapsed() < Duration::from_millis(1500) {
        let out = d.ctl(&["status"]);
        assert_eq!(out.code, 1, "{out:?}");
        assert!(out.stderr.contains("busy"), "{}", out.stderr);
    }
    // ...and served again once the hello timeout frees the slots.
    let served = loop {
        if d.ctl(&["status"]).code == 0 {
            break opened.elapsed();
        }
        assert!(
            opened.elapsed() < Duration::from_secs(8),
            "still refused after {:?}",
            opened.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("served again {served:?} after 40 idle connections (hello_timeout 2 s)");
    assert!(served >= Duration::from_millis(1500), "{served:?}");
    drop(idle);
}
