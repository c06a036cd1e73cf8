//! Status page sessions: the admin token is exchanged at `/status/login`
//! for a random session id in a cookie (HttpOnly, SameSite=Strict, Secure
//! behind TLS, expiring); each session has its own CSRF token, which every
//! state-changing form carries. Sessions live in memory: a restarted daemon
//! asks ops to log in again. Logins are rate limited per client address.

use axum::http::{header, HeaderMap};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "intake_status";
/// How long a session lasts after login.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Most sessions kept at once (the oldest is ended beyond it).
const MAX_SESSIONS: usize = 256;
/// Login attempts per client address: a burst of 5, then one every 12 s.
const LOGIN_BURST: u32 = 5;
const LOGIN_PERIOD: Duration = Duration::from_secs(12);

/// One logged-in browser.
#[derive(Clone)]
pub struct Session {
    pub csrf: String,
    pub expires: Instant,
    /// A message for the next page (the result of a replay) and whether it
    /// reports a failure, shown once.
    pub flash: Option<(String, bool)>,
}

/// Every session, keyed by the SHA-256 of its cookie value (a memory dump
/// or a log line of the table does not give a usable cookie).
pub struct Sessions {
    table: Mutex<HashMap<[u8; 32], Session>>,
    logins: DefaultKeyedRateLimiter<IpAddr>,
}

impl Default for Sessions {
    fn default() -> Self {
        let quota = Quota::with_period(LOGIN_PERIOD)
            .expect("non-zero period")
            .allow_burst(NonZeroU32::new(LOGIN_BURST).expect("non-zero burst"));
        Sessions {
            table: Mutex::default(),
            logins: RateLimiter::keyed(quota),
        }
    }
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn key(cookie: &str) -> [u8; 32] {
    Sha256::digest(cookie.as_bytes()).into()
}

impl Sessions {
    /// Whether `peer` may try a login now; `Err(wait)` when it must wait.
    pub fn login_allowed(&self, peer: IpAddr) -> Result<(), Duration> {
        use governor::clock::{Clock, DefaultClock};
        self.logins
            .check_key(&peer)
            .map_err(|n| n.wait_time_from(DefaultClock::default().now()))
    }

    /// Start a session: the cookie value to send.
    pub fn start(&self) -> String {
        let cookie = random_hex();
        let now = Instant::now();
        let mut t = self.table.lock().expect("sessions");
        t.retain(|_, s| s.expires > now);
        if t.len() >= MAX_SESSIONS {
            if let Some(oldest) = t.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) {
                t.remove(&oldest);
            }
        }
        t.insert(
            key(&cookie),
            Session {
                csrf: random_hex(),
                expires: now + LIFETIME,
                flash: None,
            },
        );
        self.logins.retain_recent();
        cookie
    }

    /// The live session a request's cookie names, taking its flash message.
    pub fn get(&self, headers: &HeaderMap) -> Option<Session> {
        let cookie = cookie_value(headers)?;
        let mut t = self.table.lock().expect("sessions");
        let k = key(&cookie);
        let s = t.get_mut(&k)?;
        if s.expires <= Instant::now() {
            t.remove(&k);
            return None;
        }
        let out = s.clone();
        s.flash = None;
        Some(out)
    }

    /// The session of a state-changing request whose form carries `csrf`.
    pub fn check(&self, headers: &HeaderMap, csrf: &str) -> Result<(), &'static str> {
        let cookie = cookie_value(headers).ok_or("not logged in")?;
        let t = self.table.lock().expect("sessions");
        let s = t
            .get(&key(&cookie))
            .filter(|s| s.expires > Instant::now())
            .ok_or("session expired: log in again")?;
        if bool::from(s.csrf.as_bytes().ct_eq(csrf.as_bytes())) {
            Ok(())
        } else {
            Err("the form's CSRF token does not match this session: reload the page")
        }
    }

    /// Leave a message for the session's next page.
    pub fn flash(&self, headers: &HeaderMap, msg: String, error: bool) {
        if let Some(c) = cookie_value(headers) {
            if let Some(s) = self.table.lock().expect("sessions").get_mut(&key(&c)) {
                s.flash = Some((msg, error));
            }
        }
    }

    /// End the session a request names.
    pub fn end(&self, headers: &HeaderMap) {
        if let Some(c) = cookie_value(headers) {
            self.table.lock().expect("sessions").remove(&key(&c));
        }
    }
}

/// The session cookie's value, if the request sent one.
fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == COOKIE && !v.is_empty()).then(|| v.to_string())
        })
}

/// Whether the browser reached us over TLS: the daemon speaks plain HTTP,
/// so TLS is a reverse proxy's, which says so in `X-Forwarded-Proto` or
/// `Forwarded: proto=https`.
pub fn over_tls(headers: &HeaderMap) -> bool {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    h("x-forwarded-proto").trim() == "https"
        || h("forwarded")
            .split([';', ','])
            .any(|p| p.trim() == "proto=https")
}

/// The `Set-Cookie` value starting a session.
pub fn set_cookie(value: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/status; Max-Age={}; HttpOnly; SameSite=Strict{}",
        LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value ending one.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/status; Max-Age=0; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_cookie(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn a_session_needs_its_cookie_and_its_csrf_token() {
        let s = Sessions::default();
        let c = s.start();
        let h = with_cookie(&format!("other=1; {COOKIE}={c}"));
        let sess = s.get(&h).expect("live session");
        assert!(s.check(&h, &sess.csrf).is_ok());
        assert!(s.check(&h, "forged").is_err());
        assert!(s
            .check(&with_cookie(&format!("{COOKIE}=guess")), &sess.csrf)
            .is_err());
        assert!(s.get(&HeaderMap::new()).is_none());
        s.flash(&h, "replayed".into(), false);
        assert_eq!(s.get(&h).unwrap().flash, Some(("replayed".into(), false)));
        assert_eq!(s.get(&h).unwrap().flash, None, "a flash is shown once");
        s.end(&h);
        assert!(s.get(&h).is_none());
    }

    #[test]
    fn logins_are_limited_per_address() {
        let s = Sessions::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..LOGIN_BURST {
            assert!(s.login_allowed(a).is_ok());
        }
        assert!(s.login_allowed(a).is_err());
        assert!(s.login_allowed("192.0.2.2".parse().unwrap()).is_ok());
    }

    #[test]
    fn cookies_are_strict_and_secure_behind_tls() {
        let c = set_cookie("abc", true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("; Secure"));
        assert!(!set_cookie("abc", false).contains("Secure"));
        let mut h = HeaderMap::new();
        assert!(!over_tls(&h));
        h.insert(
            "forwarded",
            HeaderValue::from_static("for=192.0.2.1;proto=https"),
        );
        assert!(over_tls(&h));
    }
}
