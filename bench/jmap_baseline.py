#!/usr/bin/env python3
"""Plain JMAP baseline: find the session, list the inbox by Email/query,
read the blob ids by Email/get, download every raw message one after
another, store nothing. Same server and mailbox as intake.

usage: jmap_baseline.py SESSION_URL USER PASSWORD
"""
import base64, json, sys, time, urllib.request

url, user, pw = sys.argv[1], sys.argv[2], sys.argv[3]
auth = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
opener = urllib.request.build_opener()


def get(u):
    req = urllib.request.Request(u, headers={"Authorization": auth})
    with opener.open(req) as r:
        return r.read()


def call(api, calls):
    body = json.dumps({"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"], "methodCalls": calls}).encode()
    req = urllib.request.Request(api, data=body, headers={"Authorization": auth, "Content-Type": "application/json"})
    with opener.open(req) as r:
        return json.loads(r.read())["methodResponses"]


t = time.monotonic()
s = json.loads(get(url))
base = url.split("/jmap")[0]
api = base + s["apiUrl"] if s["apiUrl"].startswith("/") else s["apiUrl"]
dl = base + s["downloadUrl"] if s["downloadUrl"].startswith("/") else s["downloadUrl"]
acct = s["primaryAccounts"]["urn:ietf:params:jmap:mail"]
boxes = call(api, [["Mailbox/get", {"accountId": acct, "ids": None}, "m"]])[0][1]["list"]
inbox = next(b["id"] for b in boxes if b.get("role") == "inbox")
ids = []
while True:
    page = call(api, [["Email/query", {"accountId": acct, "filter": {"inMailbox": inbox}, "position": len(ids), "limit": 1000}, "q"]])[0][1]["ids"]
    if not page:
        break
    ids += page
n = size = 0
for i in range(0, len(ids), 1000):
    for e in call(api, [["Email/get", {"accountId": acct, "ids": ids[i:i + 1000], "properties": ["blobId"]}, "g"]])[0][1]["list"]:
        u = dl.replace("{accountId}", acct).replace("{blobId}", e["blobId"]).replace("{name}", "m.eml").replace("{type}", "message/rfc822")
        size += len(get(u))
        n += 1
s = time.monotonic() - t
print(f'{{"stage":"baseline_python_jmap_fetch_only","messages":{n},"bytes":{size},"seconds":{s:.3f},"per_second":{n / s:.0f}}}')
