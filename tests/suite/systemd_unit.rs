//! `systemd/intake.service` carries the hardening the issue asks for, a
//! descriptor limit above the HTTP connection cap, and passes
//! `systemd-analyze verify` (with ExecStart pointed at the built binary).

use std::process::Command;

const UNIT: &str = include_str!("../../systemd/intake.service");

fn verify(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intake.service");
    std::fs::write(&path, text).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze is required (scripts/setup-test-deps.sh installs Debian's systemd package)");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    (out.status.success(), stderr)
}

fn with_built_binary(text: &str) -> String {
    text.replace("/usr/local/bin/intake", env!("CARGO_BIN_EXE_intake"))
}

#[test]
fn unit_has_the_required_sandboxing() {
    let lines: Vec<&str> = UNIT.lines().map(str::trim).collect();
    for want in [
        "Type=notify",
        "WatchdogSec=30",
        "DynamicUser=yes",
        "StateDirectory=intake",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "EnvironmentFile=-/etc/intake/env",
        "ExecStart=/usr/local/bin/intake run --config /etc/intake/intake.toml",
    ] {
        assert!(
            lines.contains(&want),
            "missing {want:?} in systemd/intake.service"
        );
    }
}

#[test]
fn unit_allows_a_descriptor_for_every_connection_with_margin() {
    let limit: usize = UNIT
        .lines()
        .find_map(|l| l.trim().strip_prefix("LimitNOFILE="))
        .expect("systemd/intake.service sets LimitNOFILE=")
        .parse()
        .expect("LimitNOFILE is one number");
    // The shipped configuration's connection cap plus the database pool,
    // a few mailboxes, SMTP and the process's own files, twice over.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/intake.toml"))
        .unwrap();
    let cfg = intake::app::config_from_toml(&text).expect("config/intake.toml is valid");
    let needed = cfg.http.max_connections + cfg.database.max_connections as usize + 64;
    assert!(
        limit >= 2 * needed,
        "LimitNOFILE={limit} is not comfortably above {needed} descriptors"
    );
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let (ok, stderr) = verify(&with_built_binary(UNIT));
    assert!(ok, "systemd-analyze verify failed:\n{stderr}");
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("intake.service"))
        .collect();
    assert!(
        ours.is_empty(),
        "warnings about the unit:\n{}",
        ours.join("\n")
    );
}

#[test]
fn verify_catches_a_broken_unit() {
    // The check above can fail: a unit whose binary is missing does not verify.
    let (ok, stderr) = verify(&UNIT.replace("/usr/local/bin/intake", "/nonexistent/intake"));
    assert!(
        !ok,
        "a missing ExecStart binary must fail verification:\n{stderr}"
    );
}
