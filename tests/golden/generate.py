#!/usr/bin/env python3
"""Regenerates the golden mails (NAME.eml) and their expectations (NAME.json).

The expectations are written by hand below from what each mail was built with,
not from intake's output, so tests/golden.rs checks the parser against an
independent source (the generated Message-ID is re-implemented here too).
Run it from anywhere: python3 tests/golden/generate.py
"""
import base64, quopri, os, hashlib
from email.header import Header
OUT = os.path.dirname(os.path.abspath(__file__))
os.makedirs(OUT, exist_ok=True)

def b64(data, width=76):
    s = base64.b64encode(data).decode()
    return "\n".join(s[i:i+width] for i in range(0, len(s), width))

def qp(data):
    return quopri.encodestring(data).decode("ascii")

def ew(text, charset, enc="B"):
    raw = text.encode(charset)
    if enc == "B":
        return "=?%s?B?%s?=" % (charset, base64.b64encode(raw).decode())
    out = ""
    for b in raw:
        c = chr(b)
        if c == " ":
            out += "_"
        elif b < 128 and (c.isalnum() or c in "!*+-/"):
            out += c
        else:
            out += "=%02X" % b
    return "=?%s?Q?%s?=" % (charset, out)

def write(name, head, body=b""):
    if isinstance(head, str):
        head = head.encode("ascii")
    if isinstance(body, str):
        body = body.encode("ascii")
    data = head.lstrip(b"\n") + body
    with open(os.path.join(OUT, name + ".eml"), "wb") as f:
        f.write(data)

TRACE = """Return-Path: <{rp}>
Delivered-To: support@desk.example
Received: from mx.{dom} (mx.{dom} [192.0.2.10])
\tby mx1.desk.example (Postfix) with ESMTPS id 4XyZ1a2b3c
\tfor <support@desk.example>; {date}
Authentication-Results: mx1.desk.example; spf=pass smtp.mailfrom={dom}
"""

# 1. ISO-8859-1, quoted-printable, RFC 2047 Q subject and name
body = "Bonjour,\n\nLa facture n° 2025-0042 a déjà été payée le 12 février, mais je reçois encore des relances.\nPourriez-vous vérifier ?\n\nCordialement,\nMarie Dupont\n"
write("latin1-quoted-printable", TRACE.format(rp="marie.dupont@exemple.fr", dom="exemple.fr", date="Tue, 4 Mar 2025 09:12:01 +0100 (CET)") + f"""Date: Tue, 4 Mar 2025 09:11:58 +0100
From: {ew("Marie Dupont (Béziers)", "ISO-8859-1", "Q")} <marie.dupont@exemple.fr>
To: Support <support@desk.example>
Subject: {ew("Problème de facturation à régler", "ISO-8859-1", "Q")}
Message-ID: <20250304091158.GA1234@exemple.fr>
MIME-Version: 1.0
Content-Type: text/plain; charset=ISO-8859-1
Content-Transfer-Encoding: quoted-printable
User-Agent: Mutt/2.2.12 (2023-09-09)

""", qp(body.encode("latin-1")))

# 2. windows-1252 Outlook, multipart/alternative
text = "Hello,\n\nour “Premium” plan was charged twice this month – 2 × € 99,00…\nCould you refund one payment?\n\nThanks,\nSeán O’Brien\n"
html = "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\"></head><body><p>Hello,</p><p>our “Premium” plan was charged twice this month – 2 × € 99,00…</p><p>Could you refund one payment?</p><p>Thanks,<br>Seán O’Brien</p></body></html>\n"
write("windows-1252-outlook", TRACE.format(rp="sean.obrien@contoso.example", dom="contoso.example", date="Wed, 5 Mar 2025 14:02:11 +0000") + f"""From: {ew("Seán O’Brien", "Windows-1252", "Q")} <Sean.OBrien@Contoso.example>
To: "support@desk.example" <support@desk.example>
Subject: {ew("Invoice – charged twice (€ 99,00)", "Windows-1252", "Q")}
Thread-Topic: Invoice charged twice
Thread-Index: AdmP0V7cX2kLk3zGQm2bQ5h1V3S9Ww==
Date: Wed, 5 Mar 2025 14:02:05 +0000
Message-ID: <AM0PR07MB6123F0A1B2C3D4E5F6A7B8C9D0@AM0PR07MB6123.eurprd07.prod.outlook.com>
Accept-Language: en-IE, en-US
Content-Language: en-IE
X-MS-Has-Attach:
X-MS-TNEF-Correlator:
Content-Type: multipart/alternative;
\tboundary="_000_AM0PR07MB6123F0A1B2C3D4E5F6A7B8C9D0AM0PR07MB6123eurp_"
MIME-Version: 1.0

--_000_AM0PR07MB6123F0A1B2C3D4E5F6A7B8C9D0AM0PR07MB6123eurp_
Content-Type: text/plain; charset="Windows-1252"
Content-Transfer-Encoding: quoted-printable

{qp(text.encode("cp1252"))}
--_000_AM0PR07MB6123F0A1B2C3D4E5F6A7B8C9D0AM0PR07MB6123eurp_
Content-Type: text/html; charset="Windows-1252"
Content-Transfer-Encoding: quoted-printable

{qp(html.encode("cp1252"))}
--_000_AM0PR07MB6123F0A1B2C3D4E5F6A7B8C9D0AM0PR07MB6123eurp_--
""")

# 3. KOI8-R, 8bit body, B-encoded subject and name
body = "Здравствуйте!\n\nПосле смены пароля не могу войти в личный кабинет.\nОшибка: \"неверный логин\".\n\nС уважением,\nИван\n"
write("koi8r-russian", (TRACE.format(rp="ivan.petrov@example.ru", dom="example.ru", date="Thu, 6 Mar 2025 11:00:03 +0300") + f"""From: {ew("Иван Петров", "KOI8-R")} <ivan.petrov@example.ru>
To: support@desk.example
Subject: {ew("Не работает вход в личный кабинет", "KOI8-R")}
Date: Thu, 6 Mar 2025 10:59:58 +0300
Message-ID: <1741247998.123456@mail.example.ru>
X-Mailer: The Bat! (v9.4.5) Professional
MIME-Version: 1.0
Content-Type: text/plain; charset=koi8-r
Content-Transfer-Encoding: 8bit

""").encode("ascii"), body.encode("koi8-r"))

# 4. ISO-2022-JP
body = "お世話になっております。\n先月分の請求書を再発行していただけますでしょうか。\n\n山田\n"
write("iso2022jp-japanese", TRACE.format(rp="taro.yamada@example.co.jp", dom="example.co.jp", date="Fri, 7 Mar 2025 10:15:00 +0900") + f"""From: {ew("山田 太郎", "ISO-2022-JP")} <taro.yamada@example.co.jp>
To: support@desk.example
Subject: {ew("請求書の再発行について", "ISO-2022-JP")}
Date: Fri, 7 Mar 2025 10:14:55 +0900
Message-Id: <20250307101455.A1B2.TARO@example.co.jp>
MIME-Version: 1.0
Content-Type: text/plain; charset="ISO-2022-JP"
Content-Transfer-Encoding: 7bit
X-Mailer: Becky! ver. 2.81.04

""", body.encode("iso-2022-jp"))

# 5. GB18030, base64 body
body = "您好，\n我的订单 #88231 无法支付，系统提示“银行卡验证失败”。\n金额：€25\n请帮忙查看。\n谢谢！\n"
write("gb18030-chinese", TRACE.format(rp="wangxm@example.cn", dom="example.cn", date="Sat, 8 Mar 2025 16:20:00 +0800") + f"""From: {ew("王小明", "GB18030")} <wangxm@example.cn>
To: support@desk.example
Subject: {ew("订单无法支付", "GB18030")}
Date: Sat, 8 Mar 2025 16:19:51 +0800
Message-ID: <tencent_8C3F2A9B1D@qq.example.cn>
X-Mailer: Foxmail 7.2.25.228
Mime-Version: 1.0
Content-Type: text/plain; charset="GB18030"
Content-Transfer-Encoding: base64

{b64(body.encode("gb18030"))}
""")

# 6. RFC 2231 file name (continuations, percent-encoded UTF-8)
pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
write("rfc2231-filename", TRACE.format(rp="k.schmidt@beispiel.de", dom="beispiel.de", date="Mon, 10 Mar 2025 08:30:00 +0100") + f"""From: Klaus Schmidt <k.schmidt@beispiel.de>
To: support@desk.example
Subject: Rechnung =?UTF-8?Q?M=C3=A4rz?= anbei
Date: Mon, 10 Mar 2025 08:29:40 +0100
Message-ID: <3f2a7c1e-5b9d-4e8a-9c0f-1a2b3c4d5e6f@beispiel.de>
MIME-Version: 1.0
User-Agent: Mozilla Thunderbird
Content-Type: multipart/mixed; boundary="------------A1B2C3D4E5F6G7H8I9J0K1L2"

This is a multi-part message in MIME format.
--------------A1B2C3D4E5F6G7H8I9J0K1L2
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: 7bit

Hallo, die Rechnung liegt bei.

--------------A1B2C3D4E5F6G7H8I9J0K1L2
Content-Type: application/pdf;
 name*=UTF-8''Rechnung%20M%C3%A4rz%202025.pdf
Content-Disposition: attachment;
 filename*0*=UTF-8''Rechnung%20M%C3%A4rz;
 filename*1*=%202025.pdf
Content-Transfer-Encoding: base64

{b64(pdf)}

--------------A1B2C3D4E5F6G7H8I9J0K1L2--
""")

# 7. HTML only
html = """<!DOCTYPE html><html><head><style>p { color: #333; }</style></head>
<body><p>Bonjour,</p><p>Mon imprimante <b>LaserJet 4000</b> affiche l&#39;erreur &laquo;&nbsp;E-42&nbsp;&raquo; depuis la mise &agrave; jour.</p>
<p>Voir <a href="https://status.exemple.fr/incident/42">la page d'incident</a>.</p><p>Merci &amp; bonne journée</p></body></html>
"""
write("html-only", TRACE.format(rp="paul@exemple.fr", dom="exemple.fr", date="Tue, 11 Mar 2025 12:00:00 +0100") + f"""From: Paul Martin <paul@exemple.fr>
To: support@desk.example
Subject: Erreur imprimante
Date: Tue, 11 Mar 2025 11:59:30 +0100
Message-ID: <CAH1x2y3z4=abc@mail.exemple.fr>
MIME-Version: 1.0
Content-Type: text/html; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

{qp(html.encode("utf-8"))}""")

# 8. Attachments: inline image, csv, nameless binary
png = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002000185d114090000000049454e44ae426082")
csv = "datum;betrag;status\n2025-03-01;99,00;doppelt\n2025-03-01;99,00;ok\n".encode("utf-8")
blob = bytes(range(256)) * 3
write("attachments-mixed", TRACE.format(rp="ops@kunde.example", dom="kunde.example", date="Wed, 12 Mar 2025 09:00:00 +0100") + f"""From: "Ops Team" <ops@kunde.example>
To: support@desk.example
Cc: Lea Weber <lea.weber@kunde.example>, "Tim Koch" <tim.koch@kunde.example>
Subject: Screenshot und Export
Date: Wed, 12 Mar 2025 08:59:12 +0100
Message-ID: <5f1e2d3c-aaaa-bbbb-cccc-0123456789ab@kunde.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mixed-boundary-01"

--mixed-boundary-01
Content-Type: multipart/related; boundary="related-boundary-02"

--related-boundary-02
Content-Type: multipart/alternative; boundary="alt-boundary-03"

--alt-boundary-03
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Siehe Screenshot und den Export im Anhang.

--alt-boundary-03
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: 8bit

<p>Siehe Screenshot <img src="cid:shot1@kunde.example"> und den Export im Anhang.</p>

--alt-boundary-03--

--related-boundary-02
Content-Type: image/png; name="screenshot.png"
Content-Disposition: inline; filename="screenshot.png"
Content-ID: <shot1@kunde.example>
Content-Transfer-Encoding: base64

{b64(png)}

--related-boundary-02--

--mixed-boundary-01
Content-Type: text/csv; charset=utf-8; name="export.csv"
Content-Disposition: attachment; filename="export.csv"
Content-Transfer-Encoding: base64

{b64(csv)}

--mixed-boundary-01
Content-Type: application/octet-stream
Content-Disposition: attachment
Content-Transfer-Encoding: base64

{b64(blob)}

--mixed-boundary-01--
""".replace("Siehe Screenshot und", "Siehe Screenshot und"))

# 9. Missing Message-ID (Apple Mail style), a Python re-implementation of the hash
nomid = """Return-Path: <jane.doe@example.org>
Delivered-To: support@desk.example
Received: from mail.example.org (mail.example.org [198.51.100.7])
\tby mx1.desk.example (Postfix) with ESMTPS id 9QwErTy
\tfor <support@desk.example>; Thu, 13 Mar 2025 17:45:10 +0000
X-Spam-Score: 0.4
From: Jane Doe <jane.doe@example.org>
Content-Type: text/plain;
\tcharset=us-ascii
Content-Transfer-Encoding: 7bit
Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3774.500.171.1.1\\))
Subject: Password reset link expired
Date: Thu, 13 Mar 2025 17:45:02 +0000
To: support@desk.example
X-Mailer: Apple Mail (2.3774.500.171.1.1)

Hi, the password reset link you sent me says it has expired
although I clicked it within a minute. Can you send a new one?

Jane
"""
write("missing-message-id", nomid)
def gen_id(raw):
    raw = raw.replace(b"\r\n", b"\n")
    if raw.startswith(b"From "):
        raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
    p = raw.find(b"\n\n")
    head, body = (raw[:p+1], raw[p+1:]) if p >= 0 else (raw, b"")
    trace = ["received","return-path","delivered-to","x-original-to","envelope-to","x-envelope-to","x-envelope-from","authentication-results","dkim-signature","received-spf","x-received","x-delivered-to","delivery-date","x-original-authentication-results","status","x-status","x-uid","x-keywords"]
    prefixes = ["arc-","x-spam-","x-virus-"]
    h = hashlib.sha256()
    keep = True
    for line in head.splitlines(keepends=True):
        if not line[:1] in (b" ", b"\t"):
            name = line.split(b":")[0].decode("latin-1").strip().lower()
            keep = not (name in trace or any(name.startswith(p) for p in prefixes))
        if keep:
            h.update(line)
    h.update(b"\n")
    h.update(body.rstrip(b" \t\r\n\x0b\x0c"))
    return h.hexdigest() + "@generated.intake"
print("missing-message-id generated id:", gen_id(nomid.encode()))

# 10. Exchange out-of-office
write("exchange-out-of-office", """Return-Path: <>
Delivered-To: support@desk.example
Received: from EUR05-AM6-obe.outbound.protection.outlook.example (mail-am6eur05on2100.outbound.protection.outlook.example [40.107.22.100])
\tby mx1.desk.example (Postfix) with ESMTPS id 7HgFdSa
\tfor <support@desk.example>; Fri, 14 Mar 2025 10:00:05 +0000
From: =?iso-8859-1?Q?M=FCller=2C_Anna?= <Anna.Mueller@kunde.example>
To: Desk Support <support@desk.example>
Subject: Automatic reply: [#4711] Ihre Anfrage ist eingegangen
Thread-Topic: [#4711] Ihre Anfrage ist eingegangen
Thread-Index: AQHbk2x1c3VwcG9ydEBkZXNrLmV4YW1wbGU=
Date: Fri, 14 Mar 2025 10:00:03 +0000
Message-ID: <8d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a@DB9PR01MB1234.eurprd01.prod.exchangelabs.example>
In-Reply-To: <notify.4711.1@desk.example>
References: <notify.4711.1@desk.example>
Auto-Submitted: auto-generated
X-MS-Has-Attach:
X-Auto-Response-Suppress: All
X-MS-Exchange-Inbox-Rules-Loop: Anna.Mueller@kunde.example
X-MS-TNEF-Correlator:
X-MS-Exchange-Generated-Message-Source: Mailbox Rules Agent
Content-Type: multipart/alternative;
\tboundary="_000_8d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5aDB9PR01MB1234eurprd01_"
MIME-Version: 1.0

--_000_8d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5aDB9PR01MB1234eurprd01_
Content-Type: text/plain; charset="iso-8859-1"
Content-Transfer-Encoding: quoted-printable

Ich bin bis zum 21. M=E4rz nicht im B=FCro. In dringenden F=E4llen wenden=
 Sie sich bitte an support-team@kunde.example.

--_000_8d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5aDB9PR01MB1234eurprd01_
Content-Type: text/html; charset="iso-8859-1"
Content-Transfer-Encoding: quoted-printable

<html><body><p>Ich bin bis zum 21. M=E4rz nicht im B=FCro.</p></body></html>

--_000_8d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5aDB9PR01MB1234eurprd01_--
""")

# 11. Gmail vacation responder
write("gmail-vacation", """Return-Path: <carlos.garcia@gmail.example>
Delivered-To: support@desk.example
Received: from mail-sor-f41.google.example (mail-sor-f41.google.example [209.85.220.41])
\tby mx1.desk.example (Postfix) with SMTPS id 2AbCdEf
\tfor <support@desk.example>; Sat, 15 Mar 2025 08:01:00 +0000
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=gmail.example; s=20230601;
\th=subject:message-id:date:from:to:in-reply-to:references; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;
\tb=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789
MIME-Version: 1.0
References: <notify.4712.1@desk.example>
In-Reply-To: <notify.4712.1@desk.example>
Auto-Submitted: auto-replied
Precedence: bulk
X-Autoreply: yes
From: =?UTF-8?Q?Carlos_Garc=C3=ADa?= <carlos.garcia@gmail.example>
Date: Sat, 15 Mar 2025 09:00:58 +0100
Message-ID: <CAJvac1T=vacation.x7y8z9@mail.gmail.example>
Subject: =?UTF-8?Q?Respuesta_autom=C3=A1tica:_de_vacaciones_hasta_el_24_de_marzo?=
To: support@desk.example
Content-Type: multipart/alternative; boundary="0000000000001234abcd5678ef90"

--0000000000001234abcd5678ef90
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

Estoy de vacaciones hasta el 24 de marzo y responder=C3=A9 a mi regreso.

--0000000000001234abcd5678ef90
Content-Type: text/html; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

<div dir=3D"ltr">Estoy de vacaciones hasta el 24 de marzo y responder=C3=A9=
 a mi regreso.</div>

--0000000000001234abcd5678ef90--
""")

# 12. Postfix DSN of our notification
write("dsn-bounce-postfix", """Return-Path: <>
Delivered-To: support@desk.example
Received: by mx.kunde.example (Postfix)
\tid 5D3C2B1A09; Sun, 16 Mar 2025 12:00:05 +0100 (CET)
Date: Sun, 16 Mar 2025 12:00:05 +0100 (CET)
From: MAILER-DAEMON@mx.kunde.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: support@desk.example
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="5D3C2B1A09.1742122805/mx.kunde.example"
Content-Transfer-Encoding: 8bit
Message-Id: <20250316110005.6E5F4A3B2C@mx.kunde.example>

This is a MIME-encapsulated message.

--5D3C2B1A09.1742122805/mx.kunde.example
Content-Description: Notification
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

This is the mail system at host mx.kunde.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

                   The mail system

<former.employee@kunde.example>: host mailstore.kunde.example[10.0.0.5] said:
    550 5.1.1 <former.employee@kunde.example>: Recipient address rejected:
    User unknown in virtual mailbox table (in reply to RCPT TO command)

--5D3C2B1A09.1742122805/mx.kunde.example
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.kunde.example
X-Postfix-Queue-ID: 5D3C2B1A09
X-Postfix-Sender: rfc822; support@desk.example
Arrival-Date: Sun, 16 Mar 2025 12:00:04 +0100 (CET)

Final-Recipient: rfc822; former.employee@kunde.example
Original-Recipient: rfc822;former.employee@kunde.example
Action: failed
Status: 5.1.1
Remote-MTA: dns; mailstore.kunde.example
Diagnostic-Code: smtp; 550 5.1.1 <former.employee@kunde.example>: Recipient
    address rejected: User unknown in virtual mailbox table

--5D3C2B1A09.1742122805/mx.kunde.example
Content-Description: Undelivered Message
Content-Type: message/rfc822
Content-Transfer-Encoding: 8bit

Return-Path: <support@desk.example>
Received: from desk.example (desk.example [203.0.113.5])
\tby mx.kunde.example (Postfix) with ESMTPS id 5D3C2B1A09
\tfor <former.employee@kunde.example>; Sun, 16 Mar 2025 12:00:04 +0100 (CET)
From: Desk Support <support@desk.example>
To: former.employee@kunde.example
Subject: [#4711] Ihre Anfrage ist eingegangen
Date: Sun, 16 Mar 2025 11:00:03 +0000
Message-ID: <notify.4711.2@desk.example>
Auto-Submitted: auto-generated
X-Auto-Response-Suppress: All
X-Intake-Loop: desk.example
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Vielen Dank, wir haben Ihre Anfrage erhalten.

--5D3C2B1A09.1742122805/mx.kunde.example--
""")

# 13. Mailing list (Mailman 3)
write("mailing-list", """Return-Path: <users-bounces+support=desk.example@lists.example.org>
Delivered-To: support@desk.example
Received: from mail.lists.example.org (mail.lists.example.org [192.0.2.55])
\tby mx1.desk.example (Postfix) with ESMTPS id 1QaZ2wSx
\tfor <support@desk.example>; Mon, 17 Mar 2025 15:00:00 +0000
From: Alice Liddell <alice@example.net>
To: users@lists.example.org
Subject: [users] SMTP relay rejects TLS 1.3
Date: Mon, 17 Mar 2025 14:59:40 +0000
Message-ID: <87h6tq1x2y.fsf@example.net>
MIME-Version: 1.0
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: 7bit
Precedence: list
List-Id: Users of ExampleMTA <users.lists.example.org>
List-Archive: <https://lists.example.org/archives/list/users@lists.example.org/>
List-Help: <mailto:users-request@lists.example.org?subject=help>
List-Post: <mailto:users@lists.example.org>
List-Subscribe: <mailto:users-join@lists.example.org>
List-Unsubscribe: <mailto:users-leave@lists.example.org>
X-Mailman-Version: 3.3.9

Since the upgrade our relay refuses TLS 1.3 clients. Anyone else?
_______________________________________________
users mailing list -- users@lists.example.org
To unsubscribe send an email to users-leave@lists.example.org
""")

# 14. Malformed MIME: wrong boundary on one part, bad base64, missing final boundary
write("malformed-mime", """Return-Path: <legacy@oldsystem.example>
Delivered-To: support@desk.example
Received: from oldsystem.example (oldsystem.example [192.0.2.99])
\tby mx1.desk.example (Postfix) with SMTP id 0BrOkEn
\tfor <support@desk.example>; Tue, 18 Mar 2025 07:00:00 +0000
From: Legacy ERP <legacy@oldsystem.example>
To: support@desk.example
Subject: Nightly export failed
Date: Tue, 18 Mar 2025 06:59:59 +0000
Message-ID: <erp.20250318.0659@oldsystem.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="==BOUNDARY=="

--==BOUNDARY==
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

The nightly export job failed with code 17.
Log excerpt attached.

--==BOUNDARY==
Content-Type: text/plain; name="log.txt"
Content-Disposition: attachment; filename="log.txt"
Content-Transfer-Encoding: base64

RVJST1IgMTc6IGRpc2sgZnVsbA==!!!!$$$$not*base64
--==BOUNDRY==
Content-Type: image/gif; name="typo.gif"
Content-Transfer-Encoding: base64

R0lGODlhAQABAAAAACw=
--==BOUNDARY==
Content-Type: application/octet-stream; name="dump.bin"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="dump.bin"

AAECAwQFBgcICQ
""")

# 15. Threaded reply
write("reply-threaded", TRACE.format(rp="anna.mueller@kunde.example", dom="kunde.example", date="Wed, 19 Mar 2025 09:30:00 +0100") + """From: Anna Mueller <anna.mueller@kunde.example>
To: Desk Support <support@desk.example>
Subject: Re: [#4711] Ihre Anfrage ist eingegangen
Date: Wed, 19 Mar 2025 09:29:51 +0100
Message-ID: <c0ffee00-1111-2222-3333-444455556666@kunde.example>
In-Reply-To: <notify.4711.1@desk.example>
References: <req.4711@kunde.example>
 <notify.4711.1@desk.example>
User-Agent: Mozilla Thunderbird
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: 8bit

Hallo,

das Problem besteht weiterhin, auch nach dem Neustart.

Am 14.03.2025 um 11:00 schrieb Desk Support:
> Vielen Dank, wir haben Ihre Anfrage erhalten.
> Ticket: #4711
""")

# 16. No sender anywhere
write("no-sender", """Delivered-To: support@desk.example
Received: from unknown (unknown [198.51.100.200])
\tby mx1.desk.example (Postfix) with SMTP id NoSnDr
\tfor <support@desk.example>; Thu, 20 Mar 2025 03:00:00 +0000
From: Webmaster
To: support@desk.example
Subject: Important notice
Date: Thu, 20 Mar 2025 02:59:00 +0000
Message-ID: <nosender.1@unknown.example>

There is no usable address in this message.
""")

# 17. Raw 8-bit headers and an unknown charset label
write("raw-8bit-headers", TRACE.format(rp="helene@exemple.fr", dom="exemple.fr", date="Fri, 21 Mar 2025 10:00:00 +0100").encode() +
    "From: Hélène Gérard <helene@exemple.fr>\nTo: support@desk.example\nSubject: Réclamation commande n° 5521\nDate: Fri, 21 Mar 2025 09:59:00 +0100\nMessage-ID: <raw8bit.5521@exemple.fr>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=unknown-8bit\nContent-Transfer-Encoding: 8bit\n\n".encode("cp1252"),
    "Ça ne marche toujours pas : le colis est arrivé abîmé, 20 € de frais.\n".encode("cp1252"))

# 18. Newsletter: bulk + List-Unsubscribe
write("newsletter-bulk", """Return-Path: <bounce-mc.us21_1234.5678-support=desk.example@mail1.shop.example>
Delivered-To: support@desk.example
Received: from mail1.shop.example (mail1.shop.example [198.51.100.30])
\tby mx1.desk.example (Postfix) with ESMTPS id 3NeWsLtR
\tfor <support@desk.example>; Sat, 22 Mar 2025 06:00:00 +0000
From: Shop Example <news@shop.example>
Reply-To: Shop Example <hello@shop.example>
To: support@desk.example
Subject: Spring sale: 30% off everything
Date: Sat, 22 Mar 2025 06:00:00 +0000
Message-ID: <0123abcd.mc.us21@mail1.shop.example>
Precedence: bulk
List-Unsubscribe: <https://shop.example/unsub?u=1234>, <mailto:unsub-1234@shop.example>
List-Unsubscribe-Post: List-Unsubscribe=One-Click
MIME-Version: 1.0
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: 7bit

<html><body><h1>Spring sale</h1><p>30% off everything this weekend.</p></body></html>
""")

# 19. Our own notification coming back (customer auto-forward)
write("own-notification-loop", """Return-Path: <support@desk.example>
Delivered-To: support@desk.example
Received: from mx.kunde.example (mx.kunde.example [192.0.2.10])
\tby mx1.desk.example (Postfix) with ESMTPS id L00pL00p
\tfor <support@desk.example>; Sun, 23 Mar 2025 10:00:02 +0000
From: Desk Support <support@desk.example>
To: support@desk.example
Subject: [#4714] Ihre Anfrage ist eingegangen
Date: Sun, 23 Mar 2025 10:00:00 +0000
Message-ID: <notify.4714.1@desk.example>
Auto-Submitted: auto-generated
X-Auto-Response-Suppress: All
X-Intake-Loop: desk.example
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Vielen Dank, wir haben Ihre Anfrage erhalten.
""")

# 20. Exim bounce, original quoted inline in the body
write("exim-bounce-inline", """Return-path: <>
Envelope-to: support@desk.example
Delivery-date: Mon, 24 Mar 2025 13:00:01 +0000
Received: from mail.kunde.example ([192.0.2.25])
\tby mx1.desk.example with esmtps (TLS1.3) (Exim 4.97)
\tid 1tXyZa-000Abc-1q
\tfor support@desk.example; Mon, 24 Mar 2025 13:00:01 +0000
X-Failed-Recipients: bob@kunde.example
Auto-Submitted: auto-replied
From: Mail Delivery System <Mailer-Daemon@mail.kunde.example>
To: support@desk.example
Content-Type: text/plain; charset=us-ascii
Subject: Mail delivery failed: returning message to sender
Message-Id: <E1tXyZa-000Abc-1q@mail.kunde.example>
Date: Mon, 24 Mar 2025 13:00:01 +0000

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  bob@kunde.example
    mailbox is full: retry timeout exceeded

------ This is a copy of the message, including all the headers. ------

Return-path: <support@desk.example>
From: Desk Support <support@desk.example>
To: bob@kunde.example
Subject: [#4713] Ihre Anfrage ist eingegangen
Message-Id: <notify.4713.1@desk.example>
Date: Mon, 24 Mar 2025 12:59:58 +0000

Vielen Dank, wir haben Ihre Anfrage erhalten.
""")
print("mails written:", len([f for f in os.listdir(OUT) if f.endswith('.eml')]))

# ---- expectations ----
import json
from email.utils import parsedate_to_datetime
def ts(s): return int(parsedate_to_datetime(s).timestamp())
def mb(addr, name=None): return {"address": addr, "name": name}
def att(fn, ct, size): return {"filename": fn, "content_type": ct, "size": size}
base = dict(message_id_generated=False, sender_source="from", in_reply_to=[], references=[], attachments=[], returned_message_ids=[])
cases = {
 "latin1-quoted-printable": dict(message_id="20250304091158.GA1234@exemple.fr", sender=mb("marie.dupont@exemple.fr", "Marie Dupont (Béziers)"),
    subject="Problème de facturation à régler", date=ts("Tue, 4 Mar 2025 09:11:58 +0100"),
    text_contains=["La facture n° 2025-0042 a déjà été payée le 12 février, mais je reçois encore des relances.", "Pourriez-vous vérifier ?"], **{"class": "normal"}),
 "windows-1252-outlook": dict(message_id="AM0PR07MB6123F0A1B2C3D4E5F6A7B8C9D0@AM0PR07MB6123.eurprd07.prod.outlook.com",
    sender=mb("Sean.OBrien@Contoso.example", "Seán O’Brien"), subject="Invoice – charged twice (€ 99,00)",
    text_contains=["our “Premium” plan was charged twice this month – 2 × € 99,00…", "Seán O’Brien"], **{"class": "normal"}),
 "koi8r-russian": dict(message_id="1741247998.123456@mail.example.ru", sender=mb("ivan.petrov@example.ru", "Иван Петров"),
    subject="Не работает вход в личный кабинет", text_contains=["После смены пароля не могу войти в личный кабинет.", "Ошибка: \"неверный логин\"."], **{"class": "normal"}),
 "iso2022jp-japanese": dict(message_id="20250307101455.A1B2.TARO@example.co.jp", sender=mb("taro.yamada@example.co.jp", "山田 太郎"),
    subject="請求書の再発行について", text_contains=["お世話になっております。", "先月分の請求書を再発行していただけますでしょうか。"], **{"class": "normal"}),
 "gb18030-chinese": dict(message_id="tencent_8C3F2A9B1D@qq.example.cn", sender=mb("wangxm@example.cn", "王小明"), subject="订单无法支付",
    text_contains=["我的订单 #88231 无法支付，系统提示“银行卡验证失败”。", "金额：€25"], **{"class": "normal"}),
 "rfc2231-filename": dict(message_id="3f2a7c1e-5b9d-4e8a-9c0f-1a2b3c4d5e6f@beispiel.de", sender=mb("k.schmidt@beispiel.de", "Klaus Schmidt"),
    subject="Rechnung März anbei", text_contains=["Hallo, die Rechnung liegt bei."], attachments=[att("Rechnung März 2025.pdf", "application/pdf", 142)], **{"class": "normal"}),
 "html-only": dict(message_id="CAH1x2y3z4=abc@mail.exemple.fr", sender=mb("paul@exemple.fr", "Paul Martin"), subject="Erreur imprimante",
    text_contains=["Mon imprimante", "LaserJet 4000", "E-42", "Merci & bonne journée"], **{"class": "normal"}),
 "attachments-mixed": dict(message_id="5f1e2d3c-aaaa-bbbb-cccc-0123456789ab@kunde.example", sender=mb("ops@kunde.example", "Ops Team"),
    cc=["lea.weber@kunde.example", "tim.koch@kunde.example"], subject="Screenshot und Export", text_contains=["Siehe Screenshot und den Export im Anhang."],
    attachments=[att("screenshot.png", "image/png", 66), att("export.csv", "text/csv", 65), att("attachment-3", "application/octet-stream", 768)], **{"class": "normal"}),
 "missing-message-id": dict(message_id="96ea289d0de44f66efa83288c4b30bc6e84a3d057225aeb3597ac81d3d73771e@generated.intake", message_id_generated=True,
    sender=mb("jane.doe@example.org", "Jane Doe"), subject="Password reset link expired", text_contains=["the password reset link you sent me says it has expired"], **{"class": "normal"}),
 "exchange-out-of-office": dict(message_id="8d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a@DB9PR01MB1234.eurprd01.prod.exchangelabs.example", sender=mb("Anna.Mueller@kunde.example", "Müller, Anna"),
    subject="Automatic reply: [#4711] Ihre Anfrage ist eingegangen", in_reply_to=["notify.4711.1@desk.example"], references=["notify.4711.1@desk.example"],
    text_contains=["Ich bin bis zum 21. März nicht im Büro. In dringenden Fällen wenden Sie sich bitte an support-team@kunde.example."], **{"class": "auto_reply"}),
 "gmail-vacation": dict(message_id="CAJvac1T=vacation.x7y8z9@mail.gmail.example", sender=mb("carlos.garcia@gmail.example", "Carlos García"),
    subject="Respuesta automática: de vacaciones hasta el 24 de marzo", in_reply_to=["notify.4712.1@desk.example"], references=["notify.4712.1@desk.example"],
    text_contains=["Estoy de vacaciones hasta el 24 de marzo y responderé a mi regreso."], **{"class": "auto_reply"}),
 "dsn-bounce-postfix": dict(message_id="20250316110005.6E5F4A3B2C@mx.kunde.example", sender=mb("MAILER-DAEMON@mx.kunde.example", "Mail Delivery System"),
    subject="Undelivered Mail Returned to Sender", text_contains=["could not\nbe delivered to one or more recipients", "User unknown in virtual mailbox table"],
    attachments=[att("attachment-1", "message/delivery-status", None), att("attachment-2", "message/rfc822", None)],
    returned_message_ids=["notify.4711.2@desk.example"], **{"class": "bounce"}),
 "mailing-list": dict(message_id="87h6tq1x2y.fsf@example.net", sender=mb("alice@example.net", "Alice Liddell"), subject="[users] SMTP relay rejects TLS 1.3",
    text_contains=["Since the upgrade our relay refuses TLS 1.3 clients."], **{"class": "list"}),
 "malformed-mime": dict(message_id="erp.20250318.0659@oldsystem.example", sender=mb("legacy@oldsystem.example", "Legacy ERP"), subject="Nightly export failed",
    text_contains=["The nightly export job failed with code 17."],
    attachments=[att("log.txt", "text/plain", None), att("dump.bin", "application/octet-stream", None)], **{"class": "normal"}),
 "reply-threaded": dict(message_id="c0ffee00-1111-2222-3333-444455556666@kunde.example", sender=mb("anna.mueller@kunde.example", "Anna Mueller"),
    subject="Re: [#4711] Ihre Anfrage ist eingegangen", in_reply_to=["notify.4711.1@desk.example"], references=["req.4711@kunde.example", "notify.4711.1@desk.example"],
    date=ts("Wed, 19 Mar 2025 09:29:51 +0100"), text_contains=["das Problem besteht weiterhin, auch nach dem Neustart.", "> Ticket: #4711"], **{"class": "normal"}),
 "raw-8bit-headers": dict(message_id="raw8bit.5521@exemple.fr", sender=mb("helene@exemple.fr", "Hélène Gérard"), subject="Réclamation commande n° 5521",
    text_contains=["Ça ne marche toujours pas : le colis est arrivé abîmé, 20 € de frais."], **{"class": "normal"}),
 "newsletter-bulk": dict(message_id="0123abcd.mc.us21@mail1.shop.example", sender=mb("news@shop.example", "Shop Example"), subject="Spring sale: 30% off everything",
    text_contains=["30% off everything this weekend."], **{"class": "list"}),
 "own-notification-loop": dict(message_id="notify.4714.1@desk.example", sender=mb("support@desk.example", "Desk Support"), subject="[#4714] Ihre Anfrage ist eingegangen",
    text_contains=["Vielen Dank, wir haben Ihre Anfrage erhalten."], **{"class": "loop"}),
 "exim-bounce-inline": dict(message_id="E1tXyZa-000Abc-1q@mail.kunde.example", sender=mb("Mailer-Daemon@mail.kunde.example", "Mail Delivery System"),
    subject="Mail delivery failed: returning message to sender", text_contains=["mailbox is full: retry timeout exceeded"],
    returned_message_ids=["notify.4713.1@desk.example"], **{"class": "bounce"}),
}
for name, c in cases.items():
    e = dict(base); e.update(c)
    with open(os.path.join(OUT, name + ".json"), "w", encoding="utf-8") as f:
        json.dump(e, f, ensure_ascii=False, indent=2); f.write("\n")
with open(os.path.join(OUT, "no-sender.json"), "w") as f:
    json.dump({"error": "no_sender"}, f, indent=2); f.write("\n")
print("expectations written:", len(cases) + 1)
