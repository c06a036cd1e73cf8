//! A private S3-compatible server: `s3s-fs` (crates.io, `cargo install
//! s3s-fs@0.14.1 --locked --features binary`; scripts/setup-test-deps.sh
//! installs it), which checks SigV4 signatures and serves path-style
//! buckets from a directory, on a loopback port.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "AKINTAKETEST";
pub const SECRET_KEY: &str = "SKINTAKETESTSECRET";

pub struct S3Server {
    child: Child,
    pub port: u16,
    /// The served directory: one folder per bucket.
    pub root: tempfile::TempDir,
}

impl S3Server {
    /// Start it with one bucket, `bucket`.
    pub fn start(bucket: &str) -> S3Server {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(bucket)).unwrap();
        let port = super::smtp::free_port();
        let bin = std::env::var("S3S_FS").unwrap_or_else(|_| {
            let home = std::env::var("CARGO_HOME")
                .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap()));
            let p = format!("{home}/bin/s3s-fs");
            if std::path::Path::new(&p).exists() {
                p
            } else {
                "s3s-fs".into()
            }
        });
        let child = Command::new(&bin)
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{bin}: {e} (run scripts/setup-test-deps.sh to install s3s-fs)")
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        S3Server { child, port, root }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
