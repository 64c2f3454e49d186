//! The client library's async client (`vaultctl::nonblocking`, feature
//! `tokio`) against a real vaultd: many jobs in flight on two threads.

use harness::{Daemon, Upstream, canary};
use proto::{ErrorCode, JobRequest, Request, Response};
use vaultctl::ClientError;
use vaultctl::nonblocking::AsyncClient;

fn job(cred: &str, url: String) -> Request {
    Request::Job(JobRequest {
        credential: cred.into(),
        method: "GET".into(),
        url,
        headers: vec![],
        body: None,
        follow_redirects: false,
        timeout_ms: None,
    })
}

#[test]
fn async_client_runs_many_jobs_in_flight_and_maps_errors() {
    let up = Upstream::plain();
    let d = Daemon::start("");
    d.init();
    let token = canary("async");
    d.add("ap", &token, &["--bearer", "--origin", &up.origin()])
        .ok();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let mut c = AsyncClient::connect(&d.socket).await.expect("connect");
            let url = up.url("/user");
            tasks.push(tokio::spawn(async move {
                for _ in 0..5 {
                    match c.call(&job("ap", url.clone())).await {
                        Ok(Response::Job(r)) => assert_eq!(r.status, 200),
                        other => panic!("unexpected: {other:?}"),
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut c = AsyncClient::connect(&d.socket).await.unwrap();
        match c.call(&job("nope", up.url("/user"))).await {
            Err(ClientError::Daemon(e)) => assert_eq!(e.code, ErrorCode::NoSuchCredential),
            other => panic!("unexpected: {other:?}"),
        }
        match c.call(&job("ap", "https://evil.example/".into())).await {
            Err(ClientError::Daemon(e)) => assert_eq!(e.code, ErrorCode::PolicyRefused),
            other => panic!("unexpected: {other:?}"),
        }
    });
    let sent = up.requests().iter().filter(|r| r.target == "/user").count();
    assert_eq!(sent, 32 * 5);
    let missing = d.dir().join("absent.sock");
    let err = rt.block_on(AsyncClient::connect(&missing)).err().unwrap();
    assert!(matches!(err, ClientError::NotRunning { .. }), "{err}");
}
