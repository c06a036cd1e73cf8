#!/usr/bin/env python3
"""Plain POP3 baseline: list the maildrop by UIDL and RETR every message,
one command at a time (poplib does not pipeline), store nothing. Same
server and maildrop as intake.

usage: pop3_baseline.py PORT USER PASSWORD
"""
import poplib, sys, time

port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
t = time.monotonic()
M = poplib.POP3("127.0.0.1", port)
M.user(user)
M.pass_(pw)
ids = M.uidl()[1]
n = size = 0
for line in ids:
    num = int(line.split()[0])
    _, lines, octets = M.retr(num)
    n += 1
    size += octets
M.quit()
s = time.monotonic() - t
print(f'{{"stage":"baseline_python_poplib_fetch_only","messages":{n},"bytes":{size},"seconds":{s:.3f},"per_second":{n / s:.0f}}}')
