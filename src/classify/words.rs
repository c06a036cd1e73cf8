//! The words classification looks for: mail-system sender names, bounce and
//! out-of-office subjects, and the phrases of a delivery report's text.

/// Sender local parts of mail systems (compared lower-case).
pub(super) const DAEMON_LOCAL_PARTS: &[&str] = &[
    "mailer-daemon",
    "mailerdaemon",
    "mailer_daemon",
    "mail-daemon",
    "postmaster",
    "post_master",
    "mail-delivery-subsystem",
    "maildelivery",
    "mail.delivery",
];

/// Sender local parts that cannot be answered (compared lower-case).
pub(super) const NO_REPLY_LOCAL_PARTS: &[&str] = &[
    "no-reply",
    "noreply",
    "no_reply",
    "do-not-reply",
    "donotreply",
    "do_not_reply",
];

/// Display names of mail systems (compared lower-case, exact).
pub(super) const DAEMON_NAMES: &[&str] = &[
    "mail delivery system",
    "mail delivery subsystem",
    "mailer-daemon",
    "mail administrator",
    "mail delivery service",
    "postmaster",
];

/// Subject fragments of delivery reports (compared lower-case, substring).
pub(super) const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliverable",
    "undelivered mail",
    "undeliverable mail",
    "delivery status notification",
    "returned mail",
    "mail delivery failed",
    "delivery failed",
    "failure notice",
    "delivery failure",
    "delivery has failed",
    "could not be delivered",
    "not delivered",
    "returned to sender",
    "delivery notification",
    "delivery problem",
    "delivery report",
    "mail delivery status",
    "unable to deliver",
    "delivery delayed",
    "delayed mail",
    "warning: could not send",
    "user unknown",
    "automatically rejected",
    "non remis",
    "non-delivery",
    "nondelivery",
    "error during delivery",
    "non distribuable",
    "unzustellbar",
    "nicht zustellbar",
    "no entregado",
    "no se pudo entregar",
    "non recapitabile",
    "onbestelbaar",
    "kan inte levereras",
    "メールエラー",
    "配信エラー",
    "配送エラー",
    "送信エラー",
    "不達",
    "退信",
    "投递失败",
];

/// Subject fragments of out-of-office and vacation replies (lower-case, substring).
pub(super) const AUTO_REPLY_SUBJECTS: &[&str] = &[
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "auto-response",
    "autoresponse",
    "out of office",
    "out of the office",
    "ooo:",
    "vacation",
    "away from",
    "abwesenheitsnotiz",
    "automatische antwort",
    "abwesend",
    "réponse automatique",
    "reponse automatique",
    "absence",
    "respuesta automática",
    "respuesta automatica",
    "fuera de la oficina",
    "risposta automatica",
    "fuori ufficio",
    "automatisch antwoord",
    "afwezig",
    "resposta automática",
    "automatisk svar",
    "自動応答",
    "自动回复",
];

/// Words of a sender's or return path's local part that name a mail system
/// or a gateway in front of one (split on punctuation, trailing digits
/// dropped: `E500_SMTP_Mail_Service`, `Symantec_AntiVirus_for_SMTP_Gateways`,
/// `prvs=…=ndr`, `"System Administrator"`).
pub(super) const SYSTEM_TOKENS: &[&str] = &[
    "mailer",
    "daemon",
    "postmaster",
    "smtp",
    "mta",
    "gateway",
    "gateways",
    "antivirus",
    "viruswall",
    "imss",
    "interscan",
    "ndr",
    "admin",
    "administrator",
    "sysadmin",
    "mailadmin",
    "bounce",
    "bounces",
    "mdaemon",
];

/// Phrases of a delivery report's text (lower-case, substring), in the
/// languages of the bounce subjects.
pub(super) const BOUNCE_BODY_PHRASES: &[&str] = &[
    "could not be delivered",
    "couldn't be delivered",
    "was not delivered",
    "could not deliver",
    "unable to deliver",
    "delivery to the following recipient",
    "delivery has failed",
    "permanent error",
    "user unknown",
    "mailbox unavailable",
    "n'a pas pu etre delivre",
    "n'a pas pu être délivré",
    "n'a pas pu être remis",
    "konnte nicht zugestellt werden",
    "no se pudo entregar",
    "non è stato possibile recapitare",
];

/// Subject prefixes of a forward: a person forwarding a bounce to ask about
/// it is not a bounce.
pub(super) const FORWARD_PREFIXES: &[&str] = &["fwd:", "fw:", "wg:", "tr:", "rv:", "i:", "doorst:"];
