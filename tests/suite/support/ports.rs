//! Loopback ports for servers a test starts later, in this process or in a
//! child (Dovecot, the SMTP sink, s3s-fs, the daemon's HTTP listener).
//!
//! A port taken with `bind(127.0.0.1:0)` and let go comes from the kernel's
//! ephemeral range, and so does every other `bind(0)` listener of the
//! suite and the local end of every outgoing connection. Between letting
//! it go and the server binding it, another test's proxy or client can get
//! it: the server then fails with "Address already in use", and a test that
//! connects to the port talks to someone else's server (CI saw a Dovecot
//! lose its port to a concurrent test this way). Ports below the ephemeral
//! range are never handed out by the kernel, so one handed out here once,
//! and checked free, stays free until its server binds it.

use std::sync::Mutex;

/// The lowest port the kernel hands out on its own
/// (`net.ipv4.ip_local_port_range`; 32768 if it cannot be read).
fn ephemeral_floor() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

/// The range ports are taken from: up to 12,000 ports under the ephemeral
/// floor, none of them privileged.
fn range() -> (u16, u16) {
    let hi = ephemeral_floor();
    (hi.saturating_sub(12_000).max(1_024), hi)
}

/// A loopback port that nothing listens on, never handed out before in
/// this process, and outside the kernel's ephemeral range (so no `bind(0)`
/// or outgoing connection can take it before its server binds it).
pub fn free_port() -> u16 {
    static NEXT: Mutex<Option<u16>> = Mutex::new(None);
    let (lo, hi) = range();
    let mut next = NEXT.lock().unwrap_or_else(|e| e.into_inner());
    // Start where another concurrent run of the suite is unlikely to be.
    let mut port = next.unwrap_or(lo + (std::process::id() % 1_000) as u16 * 8);
    for _ in lo..hi {
        if port >= hi {
            port = lo;
        }
        let candidate = port;
        port += 1;
        if std::net::TcpListener::bind(("127.0.0.1", candidate)).is_ok() {
            *next = Some(port);
            return candidate;
        }
    }
    panic!("no free loopback port in {lo}..{hi}");
}

#[test]
fn ports_are_distinct_free_and_below_the_ephemeral_range() {
    let floor = ephemeral_floor();
    let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
    let mut sorted = ports.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ports.len(), "a port was handed out twice");
    for p in ports {
        assert!(p < floor, "{p} is in the ephemeral range (from {floor})");
        std::net::TcpListener::bind(("127.0.0.1", p)).expect("the port is free");
    }
}
