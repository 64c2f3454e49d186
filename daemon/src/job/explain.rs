//! `vaultctl explain`: the verdict a job would get and the headers the
//! daemon would add, computed by the same checks a real job runs, without
//! sending anything, counting a use, or touching the credential's value.

use proto::{ErrorCode, Explanation, Header, Injection, JobRequest};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::error::JobError;
use super::policy::Policy;
use super::sign;
use crate::error::Error;

/// `Ok` with `refused` set when a rule refuses the job (exit 5); `Err` for
/// what a real job would also answer with an error that is not a refusal
/// (an invalid method or a string that is not a URL: exit 1). Which is
/// which is decided by the error's type ([`crate::error::Error::code`]),
/// and a refusal's reason is the error's own text.
pub fn explain(
    policy: &Policy,
    injection: &Injection,
    job: JobRequest,
) -> Result<Explanation, Error> {
    let JobRequest {
        method,
        url,
        headers,
        body,
        ..
    } = job;
    if Method::from_bytes(method.as_bytes()).is_err() {
        return Err(JobError::BadMethod { method }.into());
    }
    let refuse = |url: String, reason: String| {
        Ok(Explanation {
            method: method.clone(),
            url,
            refused: Some(reason),
            adds: Vec::new(),
        })
    };
    if let Err(e) = Policy::check_headers(injection, &headers)
        .and_then(|()| policy.check_method_overrides(&headers))
    {
        return refuse(url, e.to_string());
    }
    let checked = match policy.check(&method, &url) {
        Ok((u, _)) => u,
        Err(e) if e.is_refusal() => return refuse(url, e.to_string()),
        Err(e) => return Err(e.into()),
    };
    let adds = match injection {
        Injection::Header { name } => vec![format!("{name}: <the credential's token>")],
        Injection::Bearer => vec!["Authorization: Bearer <the credential's token>".to_owned()],
        Injection::Sign { .. } => {
            let cfg = sign::SignSpec::of(injection)
                .ok_or(JobError::Internal("signing credential without settings"))?;
            let mut map = match header_map(&headers) {
                Ok(m) => m,
                Err(e) => return refuse(checked.to_string(), e.to_string()),
            };
            match sign::prepare(&cfg, &method, &checked, &mut map, body.as_deref(), 0) {
                Ok(p) => p.describe(&cfg),
                Err(e) => {
                    let e = Error::from(e);
                    if e.code() == ErrorCode::PolicyRefused {
                        return refuse(checked.to_string(), e.to_string());
                    }
                    return Err(e);
                }
            }
        }
    };
    Ok(Explanation {
        method,
        url: checked.to_string(),
        refused: None,
        adds,
    })
}

/// The client's headers as the signer sees them (already screened by
/// `Policy::check_headers`, so conversion failures are rare).
fn header_map(headers: &[Header]) -> Result<HeaderMap, JobError> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for h in headers {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| JobError::HeaderName {
            name: h.name.clone(),
        })?;
        let value = HeaderValue::from_bytes(&h.value).map_err(|_| JobError::HeaderValue {
            name: name.to_string(),
        })?;
        map.append(name, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{CredentialSpec, SigAlg};

    fn job(method: &str, url: &str, headers: Vec<Header>, body: Option<&[u8]>) -> JobRequest {
        JobRequest {
            credential: "c".into(),
            method: method.into(),
            url: url.into(),
            headers,
            body: body.map(<[u8]>::to_vec),
            follow_redirects: false,
            timeout_ms: None,
        }
    }

    fn setup(injection: Injection) -> (Policy, Injection) {
        let spec = CredentialSpec {
            injection: Some(injection.clone()),
            origins: vec!["https://api.example".into()],
            methods: vec!["GET".into(), "POST".into()],
            ..CredentialSpec::default()
        };
        (Policy::from_spec(&spec).unwrap(), injection)
    }

    #[test]
    fn allowed_jobs_name_headers_never_values() {
        let (p, i) = setup(Injection::Header {
            name: "Access-Token".into(),
        });
        let e = explain(&p, &i, job("GET", "https://API.example/x#f", vec![], None)).unwrap();
        assert_eq!(e.refused, None);
        assert_eq!(e.url, "https://api.example/x");
        assert_eq!(e.adds, ["Access-Token: <the credential's token>"]);
        let (p, i) = setup(Injection::Sign {
            alg: SigAlg::Ed25519,
            keyid: Some("k".into()),
            ttl_secs: None,
            components: vec![],
        });
        let ct = Header {
            name: "Content-Type".into(),
            value: b"application/json".to_vec(),
        };
        let e = explain(
            &p,
            &i,
            job("POST", "https://api.example/x", vec![ct], Some(b"{}")),
        )
        .unwrap();
        assert_eq!(e.refused, None);
        assert_eq!(e.adds.len(), 3, "{:?}", e.adds);
        assert!(e.adds[1].contains(r#"("@method" "@target-uri" "content-digest" "content-type")"#));
        assert!(e.adds[1].contains(r#"keyid="k";alg="ed25519""#));
    }

    #[test]
    fn refusals_name_the_rule() {
        let (p, i) = setup(Injection::Sign {
            alg: SigAlg::HmacSha256,
            keyid: None,
            ttl_secs: None,
            components: vec!["@method".into(), "date".into()],
        });
        let r =
            |m: &str, u: &str, h: Vec<Header>| explain(&p, &i, job(m, u, h, None)).unwrap().refused;
        let other = r("GET", "https://other.example/", vec![]).unwrap();
        assert!(
            other.contains("https://other.example") && other.contains("not allowed"),
            "{other}"
        );
        let del = r("DELETE", "https://api.example/", vec![]).unwrap();
        assert!(del.contains("method DELETE"), "{del}");
        let date = Header {
            name: "Date".into(),
            value: b"Tue, 20 Apr 2021 02:07:55 GMT".to_vec(),
        };
        assert_eq!(r("GET", "https://api.example/", vec![date.clone()]), None);
        let missing = r("GET", "https://api.example/", vec![]).unwrap();
        assert!(missing.contains("\"date\""), "{missing}");
        let sig = Header {
            name: "Signature".into(),
            value: b"sig1=:AAAA:".to_vec(),
        };
        let forged = r("GET", "https://api.example/", vec![date, sig]).unwrap();
        assert!(
            forged.contains("Signature") && !forged.contains("AAAA"),
            "{forged}"
        );
        // Not a URL at all, or not a method: an error, not a verdict.
        assert!(explain(&p, &i, job("GET", "nope", vec![], None)).is_err());
        assert!(explain(&p, &i, job("G T", "https://api.example/", vec![], None)).is_err());
    }
}
