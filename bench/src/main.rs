//! `loadgen`: drives vaultd through the client library, or an upstream
//! directly with reqwest, and prints one JSON line of figures. Used by
//! `bench/run.sh`; not a test.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use proto::{CredentialSpec, Injection, JobRequest, Request, Response, Secret};
use vaultctl::Client;
use vaultctl::nonblocking::AsyncClient;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Jobs through vaultd, `concurrency` connections in parallel.
    Client {
        #[arg(long)]
        socket: PathBuf,
        #[arg(long)]
        cred: String,
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Stop after this many jobs in total instead of after `seconds`.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Jobs through vaultd with the async client library: `concurrency`
    /// tasks (one connection each) on a two-thread runtime, as `direct`.
    ClientAsync {
        #[arg(long)]
        socket: PathBuf,
        #[arg(long)]
        cred: String,
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
    /// The same load straight from reqwest (no daemon).
    Direct {
        #[arg(long)]
        url: String,
        #[arg(long)]
        header: String,
        #[arg(long)]
        cacert: Option<PathBuf>,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
    /// Add `count` credentials (random values) through one connection.
    Fill {
        #[arg(long)]
        socket: PathBuf,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        origin: String,
        /// Add credentials whose value lives in OpenBao at PATH#FIELD
        /// (all the same secret) instead of random local values.
        #[arg(long, value_name = "PATH#FIELD")]
        from_openbao: Option<String>,
        /// The vault passphrase that `--from-openbao` needs, from this
        /// environment variable (the bench's passphrase is public).
        #[arg(long, value_name = "VAR", default_value = "BENCH_PASSPHRASE")]
        passphrase_env: String,
    },
}

fn main() {
    match Cli::parse().mode {
        Mode::Client {
            socket,
            cred,
            url,
            concurrency,
            seconds,
            count,
        } => client(socket, cred, url, concurrency, seconds, count),
        Mode::ClientAsync {
            socket,
            cred,
            url,
            concurrency,
            seconds,
        } => client_async(socket, cred, url, concurrency, seconds),
        Mode::Direct {
            url,
            header,
            cacert,
            concurrency,
            seconds,
        } => direct(url, header, cacert, concurrency, seconds),
        Mode::Fill {
            socket,
            count,
            origin,
            from_openbao,
            passphrase_env,
        } => fill(
            socket,
            count,
            &origin,
            from_openbao.as_deref(),
            &passphrase_env,
        ),
    }
}

fn report(label: &str, mut lat: Vec<Duration>, elapsed: Duration, errors: u64) {
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let v = serde_json::json!({
        "mode": label,
        "jobs": lat.len(),
        "errors": errors,
        "seconds": elapsed.as_secs_f64(),
        "jobs_per_s": lat.len() as f64 / elapsed.as_secs_f64(),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    });
    println!("{v}");
}

fn client(
    socket: PathBuf,
    cred: String,
    url: String,
    concurrency: usize,
    seconds: f64,
    count: Option<u64>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let per_thread = count.map(|c| c.div_ceil(concurrency as u64));
    let start = Instant::now();
    let handles: Vec<_> = (0..concurrency)
        .map(|_| {
            let (socket, cred, url, stop) =
                (socket.clone(), cred.clone(), url.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(&socket).expect("connect");
                let mut lat = Vec::new();
                let mut errors = 0u64;
                while !stop.load(Ordering::Relaxed)
                    && per_thread.is_none_or(|n| (lat.len() as u64) < n)
                {
                    let t = Instant::now();
                    let job = JobRequest {
                        credential: cred.clone(),
                        method: "GET".into(),
                        url: url.clone(),
                        headers: vec![],
                        body: None,
                        follow_redirects: false,
                        timeout_ms: None,
                    };
                    match c.call(&Request::Job(job)) {
                        Ok(Response::Job(r)) if r.status < 400 => lat.push(t.elapsed()),
                        _ => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    if count.is_none() {
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (l, e) = h.join().expect("thread");
        all.extend(l);
        errors += e;
    }
    report("client", all, start.elapsed(), errors);
}

fn client_async(socket: PathBuf, cred: String, url: String, concurrency: usize, seconds: f64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let mut c = AsyncClient::connect(&socket).await.expect("connect");
            let (cred, url) = (cred.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let job = JobRequest {
                        credential: cred.clone(),
                        method: "GET".into(),
                        url: url.clone(),
                        headers: vec![],
                        body: None,
                        follow_redirects: false,
                        timeout_ms: None,
                    };
                    match c.call(&Request::Job(job)).await {
                        Ok(Response::Job(r)) if r.status < 400 => lat.push(t.elapsed()),
                        _ => errors += 1,
                    }
                }
                (lat, errors)
            }));
        }
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await.expect("task");
            all.extend(l);
            errors += e;
        }
        report("client-async", all, start.elapsed(), errors);
    });
}

fn direct(url: String, header: String, cacert: Option<PathBuf>, concurrency: usize, seconds: f64) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(p) = cacert {
            let pem = std::fs::read(p).expect("cacert");
            b = b.tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).expect("pem"));
        }
        let client = b.build().expect("client");
        let (name, value) = header.split_once(':').expect("Name: value");
        let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let start = Instant::now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (client, url, name, value) =
                    (client.clone(), url.clone(), name.clone(), value.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut errors = 0u64;
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        let r = client.get(&url).header(&name, &value).send().await;
                        match r {
                            Ok(resp) if resp.status().as_u16() < 400 => {
                                let _ = resp.bytes().await;
                                lat.push(t.elapsed());
                            }
                            _ => errors += 1,
                        }
                    }
                    (lat, errors)
                })
            })
            .collect();
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await.expect("task");
            all.extend(l);
            errors += e;
        }
        report("direct", all, start.elapsed(), errors);
    });
}

fn fill(socket: PathBuf, count: usize, origin: &str, from_openbao: Option<&str>, pass_env: &str) {
    let mut c = Client::connect(&socket).expect("connect");
    let start = Instant::now();
    let source = from_openbao.map(|s| {
        let (path, field) = s.rsplit_once('#').expect("PATH#FIELD");
        proto::Source::OpenBao {
            path: path.to_owned(),
            field: field.to_owned(),
        }
    });
    for i in 0..count {
        let spec = CredentialSpec {
            injection: Some(Injection::Header {
                name: "Access-Token".into(),
            }),
            origins: vec![origin.to_owned()],
            source: source.clone(),
            ..CredentialSpec::default()
        };
        let req = match &source {
            Some(_) => Request::AddSourced {
                name: format!("bao-{i:05}"),
                spec,
                passphrase: Secret::new(
                    std::env::var(pass_env)
                        .expect("passphrase variable")
                        .into_bytes(),
                ),
            },
            None => Request::Add {
                name: format!("bench-{i:05}"),
                spec,
                value: Secret::new(
                    format!("bench-token-{i:08}-0123456789abcdef0123456789abcdef").into_bytes(),
                ),
            },
        };
        c.call(&req).expect("add");
    }
    println!(
        "{}",
        serde_json::json!({"mode": "fill", "count": count, "seconds": start.elapsed().as_secs_f64()})
    );
}
