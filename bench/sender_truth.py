#!/usr/bin/env python3
"""The sender of every mail in the public corpora under tests/corpora, as
Python's standard library reads it (an independent parser): one line per file,
`path<TAB>addr-spec`, the addr-spec empty where Python finds no address.

    python3 bench/sender_truth.py > tests/corpora/sender_truth.tsv

tests/suite/sender_accuracy.rs compares intake's sender with this column.
"""
import email.policy, os, sys
from email.parser import BytesParser

ROOTS = ["tests/corpora/mail-parser/eml", "tests/corpora/notmuch"]

def files():
    for root in ROOTS:
        for d, _, names in sorted(os.walk(root)):
            for n in sorted(names):
                if n.endswith(".eml") or n.endswith(":2,"):
                    yield os.path.join(d, n)

def sender(path):
    with open(path, "rb") as f:
        msg = BytesParser(policy=email.policy.default).parse(f, headersonly=True)
    try:
        header = msg["From"]
        addrs = header.addresses if header is not None else ()
    except Exception:
        addrs = ()
    for a in addrs:
        if a.username and a.domain:
            return a.addr_spec
    return ""

for p in files():
    print(f"{p}\t{sender(p)}")
