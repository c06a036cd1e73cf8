//! The status page (`GET /status`): in a real headless Chromium against a
//! running daemon with a stuck mailbox on a real Dovecot and a quarantined
//! message (log in, see both, replay the message, see it gone, a screenshot
//! saved under target/screenshots), on both databases; and its access rules
//! over plain HTTP (no session, a forged CSRF token, the login's rate limit,
//! the cookie's attributes).

use crate::cli_ops::{intake, text};
use crate::common::{fresh_url, Db};
use crate::http_common::{Server, ADMIN};
use crate::support::browser::Browser;
use crate::support::dovecot::Dovecot;
use crate::support::smtp::free_port;
use intake::model::{Inbound, RawMail};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "status-page-t0ken";

/// Contrast ratio (WCAG 2) of every text element against the first opaque
/// background behind it: the lowest found, with the element's text.
const CONTRAST_JS: &str = r#"
function lum(c) { const m = c.match(/[\d.]+/g).map(Number);
  const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(m[0]) + 0.7152 * f(m[1]) + 0.0722 * f(m[2]); }
function bg(e) { for (; e; e = e.parentElement) { const c = getComputedStyle(e).backgroundColor;
  if (!c.startsWith('rgba') || !c.endsWith(', 0)')) return c; } return 'rgb(255, 255, 255)'; }
let worst = [99, ''];
for (const e of document.querySelectorAll('h1,h2,p,li,th,td,span,strong,button,label,a,caption,code')) {
  if (!e.textContent.trim()) continue;
  const a = lum(getComputedStyle(e).color), b = lum(bg(e));
  const r = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (r < worst[0]) worst = [r, e.tagName + ': ' + e.textContent.trim().slice(0, 40)];
}
return worst;
"#;

/// Form controls a screen reader cannot name.
const UNLABELLED_JS: &str = r#"
return [...document.querySelectorAll('input:not([type=hidden]),button')]
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
  .map(e => e.outerHTML);
"#;

/// Wait until the browser has navigated to a URL ending with `suffix`
/// (a click returns when the form is submitted, not always once it loaded).
async fn wait_url(b: &Browser, suffix: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let u = b.url().await;
        if u.ends_with(suffix) && b.script("return document.readyState").await == "complete" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the browser stayed at {u}, not …{suffix}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Clicks what submits a form and waits for the page it leads to: a new
/// document (the old one is marked before the click, so a page that is
/// still the old one at the same URL does not count) that has loaded.
async fn submit(b: &Browser, css: &str, suffix: &str) {
    b.script("window.__before_submit = true; return null").await;
    b.click(css).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let fresh = b
            .script(
                "return window.__before_submit === undefined && document.readyState === 'complete'",
            )
            .await;
        if fresh == true && b.url().await.ends_with(suffix) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "clicking {css} did not lead to a loaded …{suffix}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for(b: &Browser, url: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        b.goto(url).await;
        let html = b.source().await;
        if pred(&html) {
            return html;
        }
        assert!(Instant::now() < deadline, "{what} never showed: {html}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn browser_logs_in_sees_a_stuck_mailbox_and_replays_quarantine(db: Db) {
    let dc = Dovecot::start(&[("support", "supportpw")]);
    let (url, _db_dir) = fresh_url(db).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("intake.toml");
    let port = free_port();
    let write_cfg = |limit: u64| {
        std::fs::write(
            &cfg,
            format!(
                "[database]\nurl = \"{url}\"\n[desk]\ndomain = \"desk.test\"\n\
                 [http]\nlisten = \"127.0.0.1:{port}\"\nadmin_token = \"{TOKEN}\"\n\
                 [limits]\nmax_message_bytes = {limit}\n[trust]\nauthserv_ids = [\"mx.desk.test\"]\n{}",
                crate::support::mailbox_toml("support", dc.port, "support", "wrong-password", "")
            ),
        )
        .unwrap();
    };
    // A mail over a 300-byte limit is quarantined; the limit is then raised,
    // so that a replay stores it.
    write_cfg(300);
    let mail = dir.path().join("big.eml");
    std::fs::write(
        &mail,
        format!(
            "From: Ann <ann@acme.example>\nSubject: printer on fire\nMessage-ID: <fire@acme.example>\n\n{}\n",
            "smoke ".repeat(80)
        ),
    )
    .unwrap();
    let o = intake(&cfg, &["ingest", mail.to_str().unwrap()], &[]);
    assert!(text(&o).contains("quarantined"), "{}", text(&o));
    write_cfg(1_000_000);
    // A mail failing DMARC by our MTA's result: held for review.
    let held = dir.path().join("held.eml");
    std::fs::write(
        &held,
        "Authentication-Results: mx.desk.test; dmarc=fail header.from=acme.example\n\
         From: bob@acme.example\nSubject: new bank account\nMessage-ID: <held@evil.example>\n\nplease pay here\n",
    )
    .unwrap();
    let o = intake(&cfg, &["ingest", held.to_str().unwrap()], &[]);
    assert!(text(&o).contains("\"outcome\":\"review\""), "{}", text(&o));

    let mut daemon = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args(["--config", cfg.to_str().unwrap(), "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let b = Browser::start(1000, 1400).await;

    // Not logged in: the page sends the browser to the login form.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        b.goto(&format!("{base}/status")).await;
        if b.url().await.ends_with("/status/login") {
            break;
        }
        assert!(Instant::now() < deadline, "the daemon did not answer");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!b.source().await.contains("printer on fire"));
    // A wrong token is refused on the form.
    b.type_into("#token", "not-the-token").await;
    b.click("#login").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while b.count("#login-error").await == 0 {
        assert!(Instant::now() < deadline, "no login error shown");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(b.text("#login-error").await.contains("not the admin token"));
    b.type_into("#token", TOKEN).await;
    b.click("#login").await;
    wait_url(&b, "/status").await;
    let cookies = b.cookies().await;
    let c = cookies
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "intake_status")
        .unwrap_or_else(|| panic!("{cookies}"));
    assert_eq!(
        (c["httpOnly"].as_bool(), c["sameSite"].as_str()),
        (Some(true), Some("Strict")),
        "{c}"
    );

    // The stuck mailbox, with its error in words, and the quarantined mail.
    let html = wait_for(&b, &format!("{base}/status"), "the mailbox's error", |h| {
        h.contains("authentication")
    })
    .await;
    let row = b.text("tr[data-mailbox=support]").await;
    assert!(
        row.contains("support / INBOX") && row.contains("never"),
        "{row}"
    );
    assert!(
        row.contains("login as support refused: [AUTHENTICATIONFAILED] Authentication failed."),
        "{row}"
    );
    assert_eq!(b.count("tr[data-mailbox=support].stuck").await, 1, "{html}");
    let q = b.text("#quarantine").await;
    assert!(q.contains("larger than") || q.contains("300"), "{q}");
    assert!(b.text("#h-quarantine").await.contains("1 awaiting replay"));
    assert!(b.text("#outbox").await.contains("pending: 0"));
    assert!(b.text("#h-review").await.contains("1 awaiting a decision"));
    let r = b.text("#review").await;
    assert!(
        r.contains("bob@acme.example") && r.contains("dmarc=fail for acme.example"),
        "{r}"
    );
    assert_eq!(b.count("svg#throughput").await, 1);

    // Readable: every control named, text contrast at least WCAG AA (4.5:1).
    assert_eq!(b.script(UNLABELLED_JS).await, serde_json::json!([]));
    let worst = b.script(CONTRAST_JS).await;
    assert!(worst[0].as_f64().unwrap() >= 4.5, "low contrast: {worst}");
    assert_eq!(b.script("return document.documentElement.lang").await, "en");
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let png = b.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"));
    std::fs::write(
        shots.join(format!(
            "status-page-{}.png",
            format!("{db:?}").to_lowercase()
        )),
        png,
    )
    .unwrap();

    // On a phone the page itself does not scroll sideways (wide tables do,
    // inside their own box).
    b.resize(412, 915).await;
    let wide = b
        .script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
        )
        .await;
    assert!(
        wide.as_i64().unwrap() <= 0,
        "the page is wider than a phone by {wide} px"
    );
    b.resize(1000, 1400).await;

    // Replay from the page: a new ticket, and the entry is gone.
    submit(&b, "#quarantine button", "/status").await;
    let flash = b.text("#flash").await;
    assert!(flash.contains("replayed: a new ticket #"), "{flash}");
    assert!(b.text("#h-quarantine").await.contains("0 awaiting replay"));
    assert_eq!(b.count("#quarantine").await, 0);
    // The replay counts in the last hour's throughput.
    let hour = b.text("#h-daemon + ul").await;
    assert!(hour.contains("Last hour: 1 stored"), "{hour}");
    // Reloading does not show the message again.
    b.goto(&format!("{base}/status")).await;
    assert_eq!(b.count("#flash").await, 0);

    // Release the held mail from the page: a ticket as its sender.
    submit(&b, "#review button.release", "/status").await;
    let flash = b.text("#flash").await;
    assert!(flash.contains("released: ticket #"), "{flash}");
    assert!(b.text("#h-review").await.contains("0 awaiting a decision"));

    // Log out: the page is closed again.
    submit(&b, "#logout", "/status/login").await;
    b.goto(&format!("{base}/status")).await;
    assert!(b.url().await.ends_with("/status/login"));
    drop(b);
    let _ = daemon.kill();
    let _ = daemon.wait();
    let q = intake(&cfg, &["quarantine", "list"], &[]);
    assert!(text(&q).contains("replayed"), "{}", text(&q));
    let r = intake(&cfg, &["review", "list"], &[]);
    assert!(
        text(&r).contains("\"decided_by\":\"status page\""),
        "{}",
        text(&r)
    );
}

both_backends!(browser_logs_in_sees_a_stuck_mailbox_and_replays_quarantine);

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `POST /status/login` with `token`.
async fn post_login(s: &Server, c: &reqwest::Client, token: &str) -> reqwest::Response {
    c.post(s.url("/status/login"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

/// The session cookie a login with `ADMIN` sets, and the page's CSRF token.
async fn log_in(s: &Server, c: &reqwest::Client) -> (String, String) {
    let r = post_login(s, c, ADMIN).await;
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let page = c
        .get(s.url("/status"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    (cookie, csrf)
}

async fn nothing_without_a_session_and_its_csrf_token(db: Db) {
    let trust = "[trust]\nauthserv_ids = [\"mx.desk.test\"]\n";
    let s = Server::with(db, &format!("{}{trust}", crate::http_common::extra())).await;
    let c = no_redirects();
    // A quarantined message to aim at.
    let item = Inbound::Mail(RawMail {
        raw: b"Subject: no sender at all\n\nhello\n".to_vec(),
        mailbox: None,
        source: "pipe".into(),
    });
    let o = s.h.pipeline.ingest(vec![item], None).await.unwrap();
    let qid = o[0].quarantine_id.expect("quarantined");

    let r = c.get(s.url("/status")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/status/login");
    let r = c
        .post(s.url(&format!("/status/quarantine/{qid}/replay")))
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let (cookie, csrf) = log_in(&s, &c).await;
    for forged in ["", "0000", &csrf[1..]] {
        let r = c
            .post(s.url(&format!("/status/quarantine/{qid}/replay")))
            .header("cookie", &cookie)
            .form(&[("csrf", forged)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "csrf {forged:?}");
    }
    let e = s.h.pipeline.store.quarantine_list().await.unwrap();
    assert_eq!(
        (e.len(), e[0].status.as_str(), e[0].attempts),
        (1, "pending", 1)
    );
    // With the token the replay runs (and quarantines again: still no sender).
    let r = c
        .post(s.url(&format!("/status/quarantine/{qid}/replay")))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = c
        .get(s.url("/status"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let page = page.text().await.unwrap();
    assert!(
        page.contains(&format!("Replay of #{qid} quarantined it again")),
        "{page}"
    );

    // A held mail rejected from the page: only with the session's token.
    let held = s
        .h
        .mail("Authentication-Results: mx.desk.test; dmarc=fail header.from=acme.example\nFrom: bob@acme.example\nSubject: pay\nMessage-ID: <h@x>\n\nhi\n")
        .await;
    let rid = held.review_id.expect("held for review");
    for (csrf, code) in [("forged", 403), (csrf.as_str(), 303)] {
        let r = c
            .post(s.url(&format!("/status/review/{rid}/reject")))
            .header("cookie", &cookie)
            .form(&[("csrf", csrf)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), code);
        let status = s.h.pipeline.store.review_get(rid).await.unwrap().0.status;
        assert_eq!(status, if code == 303 { "rejected" } else { "pending" });
    }

    // Cookies: strict and HttpOnly; Secure when a TLS proxy says so.
    for (proto, secure) in [(None, false), (Some("https"), true)] {
        let mut req = c.post(s.url("/status/login")).form(&[("token", ADMIN)]);
        if let Some(p) = proto {
            req = req.header("x-forwarded-proto", p);
        }
        let r = req.send().await.unwrap();
        let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Max-Age="),
            "{set}"
        );
        assert_eq!(set.contains("Secure"), secure, "{set}");
    }
    // The login is rate limited: wrong tokens soon get 429 with Retry-After,
    // and then even the right one waits.
    let mut codes = Vec::new();
    for _ in 0..6 {
        let r = post_login(&s, &c, "guess").await;
        codes.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
        }
    }
    assert!(codes.contains(&401) || codes[0] == 429, "{codes:?}");
    assert_eq!(*codes.last().unwrap(), 429, "{codes:?}");
    assert_eq!(post_login(&s, &c, ADMIN).await.status(), 429);
}

both_backends!(nothing_without_a_session_and_its_csrf_token);

#[tokio::test]
async fn the_page_is_off_without_an_admin_token() {
    let s = Server::with(Db::Sqlite, "").await;
    let r = no_redirects().get(s.url("/status")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("status page is off"));
    let r = no_redirects()
        .post(s.url("/status/login"))
        .form(&[("token", "anything")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
}
