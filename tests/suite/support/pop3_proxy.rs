//! A line proxy in front of Dovecot's POP3: it records the client's
//! commands, can drop the `SASL` line of CAPA (Dovecot itself cannot offer
//! USER/PASS without PLAIN), and can refuse one command with `-ERR` (a
//! message the server will not hand over). When refusing it also hides
//! PIPELINING, so that answers stay in order without parsing them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub struct Pop3Proxy {
    pub port: u16,
    log: Arc<Mutex<Vec<String>>>,
    refused: Arc<AtomicUsize>,
}

impl Pop3Proxy {
    pub async fn start(upstream: u16, hide_sasl: bool, refuse: Option<&str>) -> Pop3Proxy {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let log: Arc<Mutex<Vec<String>>> = Default::default();
        let refused = Arc::new(AtomicUsize::new(0));
        let (seen, count) = (log.clone(), refused.clone());
        let refuse = refuse.map(str::to_string);
        tokio::spawn(async move {
            while let Ok((c, _)) = l.accept().await {
                let s = TcpStream::connect(("127.0.0.1", upstream)).await.unwrap();
                let ((cr, cw), (sr, mut sw)) = (c.into_split(), s.into_split());
                let cw = Arc::new(tokio::sync::Mutex::new(cw));
                let hide_pipelining = refuse.is_some();
                let (seen, count, refuse, to_client) =
                    (seen.clone(), count.clone(), refuse.clone(), cw.clone());
                tokio::spawn(async move {
                    let mut cr = BufReader::new(cr);
                    let mut line = String::new();
                    while cr.read_line(&mut line).await.unwrap_or(0) > 0 {
                        let cmd = line.trim_end().to_string();
                        seen.lock().unwrap().push(cmd.clone());
                        if refuse.as_deref() == Some(cmd.as_str()) {
                            count.fetch_add(1, Ordering::SeqCst);
                            let answer = b"-ERR [SYS/TEMP] message is locked\r\n";
                            if to_client.lock().await.write_all(answer).await.is_err() {
                                break;
                            }
                        } else if sw.write_all(line.as_bytes()).await.is_err() {
                            break;
                        }
                        line.clear();
                    }
                });
                tokio::spawn(async move {
                    let mut sr = BufReader::new(sr);
                    let mut line = Vec::new();
                    while sr.read_until(b'\n', &mut line).await.unwrap_or(0) > 0 {
                        let drop = (hide_sasl && line.starts_with(b"SASL "))
                            || (hide_pipelining && line.starts_with(b"PIPELINING"));
                        if !drop && cw.lock().await.write_all(&line).await.is_err() {
                            break;
                        }
                        line.clear();
                    }
                });
            }
        });
        Pop3Proxy { port, log, refused }
    }

    /// The port and the command log.
    pub fn parts(self) -> (u16, Arc<Mutex<Vec<String>>>) {
        (self.port, self.log)
    }

    /// Commands refused so far.
    pub fn refusals(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}
