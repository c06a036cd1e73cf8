//! README.md's "A first tour", run as written (the built binary instead of
//! `cargo build`, a free port instead of 8080), in a copy of the examples.

use std::process::Command;

fn tour_block() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = readme
        .split("<!-- tour -->")
        .nth(1)
        .expect("README.md has a tour block");
    let block = block.split("<!-- /tour -->").next().unwrap();
    let code = block.split("```").nth(1).unwrap();
    code.split_once('\n').unwrap().1.to_string()
}

#[test]
fn the_readme_tour_works_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let port = crate::support::smtp::free_port();
    std::fs::create_dir_all(dir.path().join("examples/mail")).unwrap();
    std::fs::create_dir_all(dir.path().join("target/release")).unwrap();
    std::fs::copy(
        format!("{root}/examples/mail/support.mbox"),
        dir.path().join("examples/mail/support.mbox"),
    )
    .unwrap();
    let toml = std::fs::read_to_string(format!("{root}/examples/tour.toml")).unwrap();
    assert!(toml.contains("127.0.0.1:8080"));
    std::fs::write(
        dir.path().join("examples/tour.toml"),
        toml.replace("127.0.0.1:8080", &format!("127.0.0.1:{port}")),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_intake"),
        dir.path().join("target/release/intake"),
    )
    .unwrap();
    let code = tour_block()
        .replace("cargo build --release -q\n", "")
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    // A hang guard: a daemon left running would hold the output open.
    let out = Command::new("timeout")
        .args([
            "-k",
            "5",
            "60",
            "bash",
            "-c",
            &format!("set -euo pipefail\n{code}"),
        ])
        .current_dir(dir.path())
        .env_remove("INTAKE_VOICE_SECRET")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let all = format!("{stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{all}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("imported 4 messages in ") && lines[0].ends_with(", 0 quarantined"),
        "{all}"
    );
    assert!(lines[0].contains("3 new tickets, 1 replies"), "{all}");
    assert!(
        lines[1].contains("0 new tickets, 0 replies, 4 already stored"),
        "{all}"
    );
    assert!(lines[2].contains("\"created\":true"), "{all}");
    assert!(
        stdout.contains(&format!("daemon at 127.0.0.1:{port}: ready; database ok")),
        "{all}"
    );
    assert!(stdout.contains("quarantine: 0 awaiting replay"), "{all}");
    assert!(stdout.contains("1 email Printer on fire 2"), "{all}");
    assert!(
        stdout.contains("email Cannot log in since the update 1"),
        "{all}"
    );
    assert!(
        stdout.contains("email Out of office: Printer on fire 1"),
        "{all}"
    );
    assert!(stdout.contains("4 voice Missed call 1"), "{all}");
}
