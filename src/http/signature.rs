//! `X-Intake-Signature` and `X-Intake-Timestamp`: the headers, a source's
//! secrets and the raw body in, accepted or a `401` naming the reason out.
//!
//! The work is bounded before any authentication: the header is at most
//! [`MAX_HEADER_BYTES`] with at most [`MAX_CANDIDATES`] signatures, the
//! timestamp is checked first, and each secret's HMAC is computed once (two
//! at most: current and previous secret) and compared with every candidate
//! in constant time. Bodies above [`BLOCKING_BYTES`] are hashed on the
//! blocking pool, so a flood of large signed bodies cannot stall the async
//! runtime (health checks, other requests).

use super::problem::Problem;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Accepted clock difference between gateway and server, in seconds.
pub const WINDOW_SECS: i64 = 300;
/// Most signatures one `X-Intake-Signature` header may carry (a gateway
/// rotating its secret sends two).
pub const MAX_CANDIDATES: usize = 8;
/// Longest `X-Intake-Signature` header: eight `v1=<64 hex>` and separators.
pub const MAX_HEADER_BYTES: usize = 1024;
/// Bodies larger than this are hashed off the async runtime.
pub const BLOCKING_BYTES: usize = 64 * 1024;

type Digest = [u8; 32];

/// Check the signature of `body` against `secrets` at `now_s` (unix seconds).
pub async fn verify(
    secrets: Arc<[Vec<u8>]>,
    headers: &HeaderMap,
    body: Bytes,
    now_s: i64,
) -> Result<(), Problem> {
    let get = |h: &str| headers.get(h).and_then(|v| v.to_str().ok()).map(str::trim);
    let ts = get("x-intake-timestamp")
        .ok_or_else(|| Problem::unauthorized("missing X-Intake-Timestamp header (unix seconds)"))?;
    let sig = get("x-intake-signature").ok_or_else(|| {
        Problem::unauthorized("missing X-Intake-Signature header (v1=<hex HMAC-SHA256>)")
    })?;
    let candidates = candidates(sig)?;
    let t: i64 = ts.parse().map_err(|_| {
        Problem::unauthorized(format!("X-Intake-Timestamp {ts:?} is not unix seconds"))
    })?;
    if now_s.abs_diff(t) > WINDOW_SECS as u64 {
        return Err(Problem::unauthorized(format!(
            "stale request: X-Intake-Timestamp is {} s from server time, more than the ±{WINDOW_SECS} s allowed (replay protection)",
            now_s.saturating_sub(t)
        )));
    }
    let ts = ts.to_string();
    let digests = if body.len() > BLOCKING_BYTES {
        tokio::task::spawn_blocking(move || digests(&secrets, &ts, &body))
            .await
            .map_err(|e| {
                let mut p = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("signature check did not complete ({e}): retry"),
                );
                p.retry_after = Some(1);
                p
            })?
    } else {
        digests(&secrets, &ts, &body)
    };
    let mut ok = subtle::Choice::from(0);
    for d in &digests {
        for c in &candidates {
            ok |= d.as_slice().ct_eq(c.as_slice());
        }
    }
    if !bool::from(ok) {
        return Err(Problem::unauthorized(
            "bad signature: X-Intake-Signature does not match HMAC-SHA256(secret, \"<timestamp>.<body>\") for this source",
        ));
    }
    Ok(())
}

/// The decoded `v1=` signatures of the header, bounded in size and count.
fn candidates(sig: &str) -> Result<Vec<Vec<u8>>, Problem> {
    if sig.len() > MAX_HEADER_BYTES {
        return Err(Problem::unauthorized(format!(
            "X-Intake-Signature is {} bytes, more than the {MAX_HEADER_BYTES} allowed (at most {MAX_CANDIDATES} signatures)",
            sig.len()
        )));
    }
    let n = sig.split(',').count();
    if n > MAX_CANDIDATES {
        return Err(Problem::unauthorized(format!(
            "X-Intake-Signature carries {n} signatures, more than the {MAX_CANDIDATES} allowed"
        )));
    }
    let candidates: Vec<Vec<u8>> = sig
        .split(',')
        .filter_map(|p| p.trim().strip_prefix("v1="))
        .filter_map(|h| hex::decode(h.trim()).ok())
        .collect();
    if candidates.is_empty() {
        return Err(Problem::unauthorized(
            "malformed X-Intake-Signature: expected v1=<hex HMAC-SHA256 of \"<timestamp>.<body>\">",
        ));
    }
    Ok(candidates)
}

/// HMAC-SHA256(secret, "<ts>.<body>") for each secret, once.
fn digests(secrets: &[Vec<u8>], ts: &str, body: &[u8]) -> Vec<Digest> {
    secrets
        .iter()
        .map(|secret| {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
            mac.update(ts.as_bytes());
            mac.update(b".");
            mac.update(body);
            mac.finalize().into_bytes().into()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(ts: i64, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-intake-timestamp", ts.to_string().parse().unwrap());
        h.insert("x-intake-signature", sig.parse().unwrap());
        h
    }

    fn sign(secret: &[u8], ts: i64, body: &[u8]) -> String {
        hex::encode(digests(&[secret.to_vec()], &ts.to_string(), body)[0])
    }

    #[tokio::test]
    async fn any_candidate_with_either_secret_is_accepted() {
        let secrets: Arc<[Vec<u8>]> = vec![b"new".to_vec(), b"old".to_vec()].into();
        let body = Bytes::from_static(b"{}");
        let good = sign(b"old", 1000, &body);
        let sig = format!("v1=00, v1=zz, v1={good}, v1=ff");
        verify(secrets.clone(), &headers(1000, &sig), body.clone(), 1000)
            .await
            .unwrap();
        let big = Bytes::from(vec![b' '; BLOCKING_BYTES + 1]);
        let sig = format!("v1={}", sign(b"new", 1000, &big));
        verify(secrets.clone(), &headers(1000, &sig), big, 1001)
            .await
            .unwrap();
        let e = verify(secrets, &headers(1000, "v1=00"), body, 1000)
            .await
            .unwrap_err();
        assert!(e.detail.starts_with("bad signature"), "{}", e.detail);
    }

    #[tokio::test]
    async fn too_many_candidates_or_too_long_a_header_is_refused_unhashed() {
        let secrets: Arc<[Vec<u8>]> = vec![b"new".to_vec()].into();
        let body = Bytes::from_static(b"{}");
        let nine = ["v1=00"; 9].join(",");
        let e = verify(secrets.clone(), &headers(5, &nine), body.clone(), 5)
            .await
            .unwrap_err();
        assert!(e.detail.contains("9 signatures"), "{}", e.detail);
        let long = format!("v1={}", "0".repeat(MAX_HEADER_BYTES));
        let e = verify(secrets, &headers(5, &long), body, 5)
            .await
            .unwrap_err();
        assert!(
            e.detail.contains("more than the 1024 allowed"),
            "{}",
            e.detail
        );
    }
}
