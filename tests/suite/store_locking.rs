//! Write transactions on SQLite take the write lock when they begin: a
//! refused admin action (its transaction dropped, the rollback still on its
//! way) must never make the next one fail with "database is locked".

use crate::common;

use common::{Db, TestDb};

async fn refused_write_then_write(db: Db) {
    let t = TestDb::new(db).await;
    let s = &t.store;
    let org = s
        .create_organization("Acme", &["acme.com".into()])
        .await
        .unwrap();
    for i in 0..100 {
        // Inserts an organization, then finds its domain taken: refused.
        let e = s
            .create_organization(&format!("Other {i}"), &["acme.com".into()])
            .await
            .unwrap_err();
        assert!(e.to_string().contains("already belongs"), "{e}");
        // Reads, then writes, straight away.
        s.add_domain(org, &format!("acme{i}.test"))
            .await
            .unwrap_or_else(|e| panic!("round {i}: {e}"));
    }
}

both_backends!(refused_write_then_write);
