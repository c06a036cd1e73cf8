//! The admin API over real HTTP, on SQLite and PostgreSQL: bearer token,
//! user look-up and merge, organizations, agent tickets, visibility and
//! status, quarantine.

use crate::common;
use crate::http_common;

use common::{mail, Db};
use http_common::*;
use reqwest::Method;
use serde_json::{json, Value};

async fn get(s: &Server, path: &str) -> (u16, Value) {
    let (st, _, v) = parts(s.admin(Method::GET, path).send().await.unwrap()).await;
    (st, v)
}

async fn send(s: &Server, m: Method, path: &str, body: Value) -> (u16, Value) {
    let (st, _, v) = parts(s.admin(m, path).json(&body).send().await.unwrap()).await;
    (st, v)
}

async fn token_required(db: Db) {
    let s = Server::start(db).await;
    let r = s
        .client
        .get(s.url("/v1/organizations"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"intake\"");
    assert_problem(r, 401, "missing bearer token").await;
    let r = s
        .client
        .get(s.url("/v1/organizations"))
        .bearer_auth("admin-t0keN")
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "wrong admin token").await;
    let r = s
        .client
        .post(s.url("/v1/tickets"))
        .json(&json!({"agent": "a@desk.test", "subject": "x", "comment": "y"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "bearer").await;
    assert_eq!(s.counts().await, (0, 0));
    assert_eq!(get(&s, "/v1/organizations").await, (200, json!([])));
    // No token configured: the admin API is off.
    let off = Server::with(
        db,
        &extra().replace(&format!("admin_token = \"{ADMIN}\"\n"), ""),
    )
    .await;
    let r = off
        .admin(Method::GET, "/v1/organizations")
        .send()
        .await
        .unwrap();
    assert_problem(r, 503, "admin API disabled: set http.admin_token_env").await;
}

async fn voice_then_email_until_merged(db: Db) {
    let s = Server::start(db).await;
    let call = json!({"contact": {"phone": "+1 415 555 0100", "name": "Ada"}, "message": "called"})
        .to_string();
    let (st, _, v) = parts(s.post("voice", &call, None).await).await;
    assert_eq!(st, 201);
    let phone_user = v["user_id"].as_i64().unwrap();
    let m =
        s.h.mail(&mail(
            "Ada Lovelace <ada@acme.com>",
            "Invoice",
            "m1@acme.com",
            "",
            "hello",
        ))
        .await;
    let mail_user = m.user_id.unwrap();
    assert_ne!(phone_user, mail_user, "profiles are never guessed together");
    let (st, u) = get(&s, "/v1/users?contact=%2B14155550100").await;
    assert_eq!((st, u["id"].as_i64()), (200, Some(phone_user)));
    assert!(u["organization"].is_null());
    let (st, u) = get(&s, "/v1/users?contact=ADA@acme.com").await;
    assert_eq!((st, u["id"].as_i64()), (200, Some(mail_user)));
    assert_eq!(u["organization"]["domains"], json!(["acme.com"]));
    let (st, u) = get(&s, "/v1/users?contact=nobody@acme.com").await;
    assert_eq!(st, 404, "{u}");
    let (st, u) = get(&s, "/v1/users?contact=12").await;
    assert_eq!(st, 422, "{u}");
    let (st, u) = send(
        &s,
        Method::POST,
        &format!("/v1/users/{phone_user}/merge"),
        json!({"into": mail_user}),
    )
    .await;
    assert_eq!(st, 200, "{u}");
    assert_eq!(u["identities"].as_array().unwrap().len(), 2);
    for c in ["%2B14155550100", "ada@acme.com", "(415)%20555-0100"] {
        let (st, u) = get(&s, &format!("/v1/users?contact={c}")).await;
        assert_eq!((st, u["id"].as_i64()), (200, Some(mail_user)), "{c}");
    }
    // The next call lands on the surviving profile.
    let (_, _, v) = parts(s.post("voice", &call, None).await).await;
    assert_eq!(v["user_id"].as_i64(), Some(mail_user));
    let (st, p) = send(
        &s,
        Method::POST,
        &format!("/v1/users/{phone_user}/merge"),
        json!({"into": mail_user}),
    )
    .await;
    assert_eq!(st, 409, "{p}");
    let (st, p) = send(
        &s,
        Method::POST,
        "/v1/users/999/merge",
        json!({"into": mail_user}),
    )
    .await;
    assert_eq!(st, 404, "{p}");
    let (st, p) = send(
        &s,
        Method::POST,
        &format!("/v1/users/{mail_user}/merge"),
        json!({"into": "x"}),
    )
    .await;
    assert_eq!(
        (st, p["detail"].as_str()),
        (422, Some("into must be an integer, got a string"))
    );
}

async fn private_ticket_then_publish(db: Db) {
    let s = Server::start(db).await;
    let body = json!({"requester": {"phone": "+14155550100", "name": "Ada"}, "agent": "grace@desk.test",
                      "subject": "Logged call", "comment": "Discussed invoice 42", "public": false});
    let r = s
        .admin(Method::POST, "/v1/tickets")
        .json(&body)
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let (st, _, t) = parts(r).await;
    assert_eq!(st, 201, "{t}");
    assert_eq!(loc, format!("/v1/tickets/{}", t["id"]));
    assert_eq!(
        (t["public"].clone(), t["channel"].clone()),
        (json!(false), json!("agent"))
    );
    assert_eq!(t["comments"][0]["public"], false);
    let (_, u) = get(&s, "/v1/users?contact=%2B14155550100").await;
    assert_eq!(t["requester_id"], u["id"]);
    let (st, t2) = send(&s, Method::PATCH, &loc, json!({"public": true})).await;
    assert_eq!(st, 200, "{t2}");
    assert_eq!(t2["public"], true);
    assert_eq!(t2["comments"][0]["public"], true);
    let kinds: Vec<&str> = t2["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ticket_created", "ticket_published"]);
    let (st, t3) = get(&s, &loc).await;
    assert_eq!((st, &t3), (200, &t2));
}

async fn visibility_and_status_rules(db: Db) {
    let s = Server::start(db).await;
    let call =
        json!({"contact": {"phone": "+14155550100"}, "conversation_id": "c1", "message": "one"})
            .to_string();
    let (_, _, v) = parts(s.post("voice", &call, None).await).await;
    let path = format!("/v1/tickets/{}", v["ticket_id"]);
    let (st, t) = send(&s, Method::PATCH, &path, json!({"public": false})).await;
    assert_eq!(
        (st, t["public"].clone()),
        (200, json!(false)),
        "one public comment: may become private"
    );
    assert_eq!(
        send(&s, Method::PATCH, &path, json!({"public": true}))
            .await
            .0,
        200
    );
    parts(s.post("voice", &call, None).await).await;
    let r = s
        .admin(Method::PATCH, &path)
        .json(&json!({"public": false}))
        .send()
        .await
        .unwrap();
    assert_problem(r, 409, "has 2 public comments").await;
    let (_, t) = get(&s, &path).await;
    assert_eq!(t["public"], true, "refused change must not apply");
    let (st, t) = send(&s, Method::PATCH, &path, json!({"status": "solved"})).await;
    assert_eq!((st, t["status"].clone()), (200, json!("solved")));
    let r = s
        .admin(Method::PATCH, &path)
        .json(&json!({"status": "bogus"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, 422, "unknown status \"bogus\"").await;
    let r = s
        .admin(Method::PATCH, &path)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_problem(r, 422, "nothing to change").await;
    let r = s
        .admin(Method::PATCH, &path)
        .json(&json!({"publik": true}))
        .send()
        .await
        .unwrap();
    assert_problem(r, 422, "unknown field publik").await;
    let r = s
        .admin(Method::PATCH, &path)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_problem(r, 400, "malformed JSON").await;
    let r = s
        .admin(Method::PATCH, &path)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_problem(r, 415, "Content-Type").await;
    for p in ["/v1/tickets/999", "/v1/tickets/abc"] {
        let r = s.admin(Method::GET, p).send().await.unwrap();
        assert_problem(r, 404, "not found").await;
    }
}

async fn agent_is_default_requester(db: Db) {
    let s = Server::start(db).await;
    let (st, t) = send(
        &s,
        Method::POST,
        "/v1/tickets",
        json!({"agent": "Grace@Desk.test", "subject": "Internal", "comment": "todo"}),
    )
    .await;
    assert_eq!(st, 201, "{t}");
    assert_eq!(t["public"], true);
    let (_, u) = get(&s, "/v1/users?contact=grace@desk.test").await;
    assert_eq!(t["requester_id"], u["id"]);
    let (st, p) = send(
        &s,
        Method::POST,
        "/v1/tickets",
        json!({"subject": "x", "comment": "y"}),
    )
    .await;
    assert_eq!(st, 422, "{p}");
    assert!(
        p["detail"].as_str().unwrap().starts_with("requester:"),
        "{p}"
    );
    let (st, p) = send(
        &s,
        Method::POST,
        "/v1/tickets",
        json!({"requester": {"phone": "12"}, "subject": "x", "comment": "y"}),
    )
    .await;
    assert_eq!(
        (
            st,
            p["detail"].as_str().unwrap().starts_with("requester.phone")
        ),
        (422, true),
        "{p}"
    );
    let body = json!({"requester": {"email": "ada@acme.com"}, "agent": "grace", "subject": "x", "comment": "y"});
    let (st, p) = send(&s, Method::POST, "/v1/tickets", body).await;
    assert_eq!(
        (
            st,
            p["detail"]
                .as_str()
                .unwrap()
                .starts_with("agent: invalid email")
        ),
        (422, true),
        "{p}"
    );
    assert_eq!(s.counts().await, (1, 1));
}

async fn organizations_and_domains(db: Db) {
    let s = Server::with(
        db,
        &format!("{}[organizations]\nauto_create = false\n", extra()),
    )
    .await;
    let u =
        s.h.mail(&mail("bob@acme.de", "Hi", "b1@acme.de", "", "x"))
            .await
            .user_id
            .unwrap();
    let (st, o) = send(
        &s,
        Method::POST,
        "/v1/organizations",
        json!({"name": "Acme", "domains": ["acme.com", "eu.acme.co.uk"]}),
    )
    .await;
    assert_eq!(st, 201, "{o}");
    assert_eq!(o["domains"], json!(["acme.co.uk", "acme.com"]));
    let id = o["id"].as_i64().unwrap();
    let (st, p) = send(
        &s,
        Method::POST,
        "/v1/organizations",
        json!({"name": "Other", "domains": ["acme.com"]}),
    )
    .await;
    assert_eq!(st, 409, "{p}");
    let (st, p) = send(
        &s,
        Method::POST,
        "/v1/organizations",
        json!({"name": "Bad", "domains": ["com"]}),
    )
    .await;
    assert_eq!(st, 422, "{p}");
    let (st, o) = send(
        &s,
        Method::POST,
        &format!("/v1/organizations/{id}/domains"),
        json!({"domain": "acme.de"}),
    )
    .await;
    assert_eq!((st, o["users_moved"].clone()), (200, json!(1)), "{o}");
    let (_, user) = get(&s, "/v1/users?contact=bob@acme.de").await;
    assert_eq!(
        (user["id"].as_i64(), user["organization"]["id"].as_i64()),
        (Some(u), Some(id))
    );
    let (st, _) = send(
        &s,
        Method::POST,
        "/v1/organizations/77/domains",
        json!({"domain": "x.org"}),
    )
    .await;
    assert_eq!(st, 404);
    let (st, list) = get(&s, "/v1/organizations").await;
    assert_eq!(st, 200);
    assert_eq!(
        list,
        json!([{"id": id, "name": "Acme", "domains": ["acme.co.uk", "acme.com", "acme.de"]}])
    );
}

async fn quarantine_list_and_replay(db: Db) {
    let s = Server::start(db).await;
    let raw = "Subject: no sender\nMessage-ID: <q1@x.test>\n\nbody\n";
    let q = s.h.mail(raw).await;
    let qid = q.quarantine_id.unwrap();
    let (st, list) = get(&s, "/v1/quarantine").await;
    assert_eq!((st, list[0]["id"].as_i64()), (200, Some(qid)));
    assert_eq!(list[0]["status"], "pending");
    let (st, _, out) = parts(
        s.admin(Method::POST, &format!("/v1/quarantine/{qid}/replay"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (st, out["outcome"].clone()),
        (200, json!("quarantined")),
        "{out}"
    );
    let r = s
        .admin(Method::POST, "/v1/quarantine/999/replay")
        .send()
        .await
        .unwrap();
    assert_problem(r, 404, "quarantine entry 999 not found").await;
}

both_backends!(
    token_required,
    voice_then_email_until_merged,
    private_ticket_then_publish,
    visibility_and_status_rules,
    agent_is_default_requester,
    organizations_and_domains,
    quarantine_list_and_replay,
);
