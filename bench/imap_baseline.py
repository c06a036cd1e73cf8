#!/usr/bin/env python3
"""Plain IMAP baseline: fetch every message of INBOX with BODY.PEEK[] in UID
batches, store nothing. Same server, same batch size as intake.

usage: imap_baseline.py PORT USER PASSWORD [BATCH=200]
"""
import imaplib, sys, time

port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
batch = int(sys.argv[4]) if len(sys.argv) > 4 else 200
t = time.monotonic()
M = imaplib.IMAP4("127.0.0.1", port)
M.login(user, pw)
M.select("INBOX", readonly=True)
uids = M.uid("SEARCH", None, "ALL")[1][0].split()
n = size = 0
for i in range(0, len(uids), batch):
    chunk = b",".join(uids[i:i + batch])
    typ, data = M.uid("FETCH", chunk, "(UID BODY.PEEK[])")
    for part in data:
        if isinstance(part, tuple):
            n += 1
            size += len(part[1])
M.logout()
s = time.monotonic() - t
print(f'{{"stage":"baseline_python_imaplib_fetch_only","messages":{n},"bytes":{size},"seconds":{s:.3f},"per_second":{n / s:.0f}}}')
