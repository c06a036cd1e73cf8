//! `intake export` through the built binary on both databases: streamed page
//! by page (more rows than a page, each once, in order) and its filters.

use crate::cli_ops::{intake, text};
use crate::common::{mail, Db, Harness};

fn export(cfg: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["export"];
    a.extend_from_slice(args);
    let o = intake(cfg, &a, &[]);
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
}

fn ids(doc: &serde_json::Value, key: &str) -> Vec<i64> {
    doc[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_i64().unwrap())
        .collect()
}

async fn export_streams_every_row_once_and_filters(db: Db) {
    let h = Harness::new(db).await;
    // 1,100 tickets from 550 senders of 11 domains: more than two pages of
    // tickets and users.
    let mails: Vec<String> = (0..1100)
        .map(|i| {
            mail(
                &format!("c{} <c{}@org{}.example>", i % 550, i % 550, i % 11),
                &format!("Request {i}"),
                &format!("m{i}@org.example"),
                "",
                "body",
            )
        })
        .collect();
    let refs: Vec<&str> = mails.iter().map(String::as_str).collect();
    h.mails(&refs).await;
    let reply = mail(
        "c3 <c3@org3.example>",
        "Re: Request 1",
        "r1@org.example",
        "In-Reply-To: <m1@org.example>\n",
        "more",
    );
    let other = mail(
        "z <z@zeta.example>",
        "Re: Request 1",
        "r2@zeta.example",
        "In-Reply-To: <m1@org.example>\n",
        "me too",
    );
    h.mails(&[&reply, &other]).await;
    h.mails(&["not a mail\n"]).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("intake.toml");
    std::fs::write(
        &cfg,
        format!(
            "[database]\nurl = \"{}\"\n[desk]\ndomain = \"desk.test\"\n",
            h.db.url
        ),
    )
    .unwrap();

    let all = export(&cfg, &[]);
    assert_eq!(
        all,
        h.export().await,
        "the binary and the library export the same document"
    );
    let t = ids(&all, "tickets");
    assert_eq!(t.len(), 1100);
    assert!(
        t.windows(2).all(|w| w[0] < w[1]),
        "each ticket once, in order"
    );
    let u = ids(&all, "users");
    assert_eq!(u.len(), 551);
    assert!(u.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(ids(&all, "organizations").len(), 12);
    assert_eq!(all["quarantine"].as_array().unwrap().len(), 1);
    let first = &all["tickets"][1];
    assert_eq!(first["comments"].as_array().unwrap().len(), 3, "{first}");

    // --ticket: those tickets, the users they name, their organizations.
    let (a, b) = (t[1], t[700]);
    let doc = export(
        &cfg,
        &["--ticket", &a.to_string(), "--ticket", &b.to_string()],
    );
    assert_eq!(ids(&doc, "tickets"), vec![a, b]);
    let names: Vec<&str> = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.len(),
        4,
        "c1, c3, z (ticket a) and c150 (ticket b): {names:?}"
    );
    assert_eq!(doc["organizations"].as_array().unwrap().len(), 4, "{doc}");
    assert!(doc["quarantine"].as_array().unwrap().is_empty());

    // --user: every ticket that user requested or wrote on.
    let c3 = all["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "c3")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let doc = export(&cfg, &["--user", &c3.to_string()]);
    assert_eq!(ids(&doc, "tickets"), vec![t[1], t[3], t[553]]);

    // --since: activity at or after the time; quarantine received since.
    let doc = export(&cfg, &["--since", "2001-01-01"]);
    assert_eq!(ids(&doc, "tickets").len(), 1100);
    assert_eq!(doc["quarantine"].as_array().unwrap().len(), 1);
    let doc = export(&cfg, &["--since", "2999-01-01T00:00:00Z"]);
    assert!(
        ids(&doc, "tickets").is_empty() && ids(&doc, "users").is_empty(),
        "{doc}"
    );
    assert!(doc["quarantine"].as_array().unwrap().is_empty());
    let o = intake(&cfg, &["export", "--since", "yesterday"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("\"yesterday\" is not an RFC 3339 date"),
        "{}",
        text(&o)
    );
}

both_backends!(export_streams_every_row_once_and_filters);
