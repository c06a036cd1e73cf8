//! Contact points: raw strings in, normalised newtypes out.
//!
//! * [`EmailAddress`]: trimmed, lower-cased (local part too, as most providers
//!   treat it), domain converted to ASCII with IDNA.
//! * [`PhoneNumber`]: E.164, parsed with the configured default region; an
//!   invalid number is an error, never a guess.
//! * [`Handle`]: `network:id`, network lower-cased (`whatsapp:4155550100`).
//! * [`RegistrableDomain`]: the public-suffix-list registrable domain
//!   (`eu.mail.acme.co.uk` → `acme.co.uk`).

use serde::Serialize;
use std::fmt;

/// Why a contact point was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("invalid email address {0:?}")]
    Email(String),
    #[error("invalid phone number {0:?}")]
    Phone(String),
    #[error("invalid messaging handle {0:?}: expected network:id, e.g. whatsapp:4155550100")]
    Handle(String),
}

/// A normalised email address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, IdentityError> {
        let bad = || IdentityError::Email(raw.to_string());
        let s = raw
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim();
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || domain.is_empty()
            || local.len() > 64
            || s.len() > 254
            || s.chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        {
            return Err(bad());
        }
        let domain = idna::domain_to_ascii(domain.trim_end_matches('.')).map_err(|_| bad())?;
        if domain.is_empty() || !domain.contains('.') && domain != "localhost" {
            return Err(bad());
        }
        Ok(EmailAddress(format!("{}@{}", local.to_lowercase(), domain)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }

    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or("")
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number in E.164 form (`+14155550100`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(raw: &str, default_region: &str) -> Result<Self, IdentityError> {
        let bad = || IdentityError::Phone(raw.to_string());
        let region = default_region.parse::<phonenumber::country::Id>().ok();
        let n = phonenumber::parse(region, raw.trim()).map_err(|_| bad())?;
        if !phonenumber::is_valid(&n) {
            return Err(bad());
        }
        Ok(PhoneNumber(
            n.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A messaging handle, namespaced by network.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Handle(String);

impl Handle {
    pub fn parse(raw: &str) -> Result<Self, IdentityError> {
        let bad = || IdentityError::Handle(raw.to_string());
        let (net, id) = raw.trim().split_once(':').ok_or_else(bad)?;
        let net = net.trim().to_lowercase();
        let id = id.trim();
        if net.is_empty()
            || id.is_empty()
            || id.len() > 200
            || !net
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            || id.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad());
        }
        // Handles on these networks are case-insensitive user names.
        let id = match net.as_str() {
            "telegram" | "twitter" | "x" | "instagram" => id.to_lowercase(),
            _ => id.to_string(),
        };
        Ok(Handle(format!("{net}:{id}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The kind of a contact point, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactKind {
    Email,
    Phone,
    Handle,
}

impl ContactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactKind::Email => "email",
            ContactKind::Phone => "phone",
            ContactKind::Handle => "handle",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "email" => Some(ContactKind::Email),
            "phone" => Some(ContactKind::Phone),
            "handle" => Some(ContactKind::Handle),
            _ => None,
        }
    }
}

/// One normalised contact point.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ContactPoint {
    Email(EmailAddress),
    Phone(PhoneNumber),
    Handle(Handle),
}

impl ContactPoint {
    pub fn kind(&self) -> ContactKind {
        match self {
            ContactPoint::Email(_) => ContactKind::Email,
            ContactPoint::Phone(_) => ContactKind::Phone,
            ContactPoint::Handle(_) => ContactKind::Handle,
        }
    }

    pub fn value(&self) -> &str {
        match self {
            ContactPoint::Email(e) => e.as_str(),
            ContactPoint::Phone(p) => p.as_str(),
            ContactPoint::Handle(h) => h.as_str(),
        }
    }

    /// Guess the kind from a look-up string: `a@b` is an email, `net:id` a
    /// handle, anything else a phone number.
    pub fn parse_any(raw: &str, default_region: &str) -> Result<Self, IdentityError> {
        let s = raw.trim();
        if s.contains('@') && !s.contains(':') {
            EmailAddress::parse(s).map(ContactPoint::Email)
        } else if s.contains(':') && !s.starts_with('+') {
            Handle::parse(s).map(ContactPoint::Handle)
        } else {
            PhoneNumber::parse(s, default_region).map(ContactPoint::Phone)
        }
    }
}

/// A registrable domain (eTLD+1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RegistrableDomain(String);

impl RegistrableDomain {
    /// The registrable domain of a host name; None for a bare public suffix.
    pub fn of(host: &str) -> Option<Self> {
        let host = host.trim().trim_end_matches('.').to_lowercase();
        let host = idna::domain_to_ascii(&host).ok()?;
        let d = psl::domain_str(&host)?;
        Some(RegistrableDomain(d.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free-mail and disposable providers: never an organization.
pub struct FreeMail {
    exact: std::collections::HashSet<String>,
    /// `name.*` patterns: the registrable domain's first label.
    any_tld: std::collections::HashSet<String>,
}

const BUILTIN_FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "outlook.*",
    "hotmail.*",
    "live.*",
    "msn.com",
    "yahoo.*",
    "ymail.com",
    "rocketmail.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.*",
    "aim.com",
    "gmx.*",
    "web.de",
    "t-online.de",
    "freenet.de",
    "mail.ru",
    "bk.ru",
    "inbox.ru",
    "list.ru",
    "yandex.*",
    "ya.ru",
    "rambler.ru",
    "proton.me",
    "protonmail.com",
    "protonmail.ch",
    "pm.me",
    "tutanota.com",
    "tuta.io",
    "zoho.com",
    "zohomail.com",
    "qq.com",
    "163.com",
    "126.com",
    "yeah.net",
    "sina.com",
    "sohu.com",
    "naver.com",
    "daum.net",
    "hanmail.net",
    "libero.it",
    "virgilio.it",
    "tiscali.it",
    "alice.it",
    "orange.fr",
    "wanadoo.fr",
    "free.fr",
    "laposte.net",
    "sfr.fr",
    "terra.com.br",
    "uol.com.br",
    "bol.com.br",
    "rediffmail.com",
    "fastmail.*",
    "hey.com",
    "mail.com",
    "email.com",
    "usa.com",
    "inbox.com",
    "hushmail.com",
    "gmx.net",
    "seznam.cz",
    "wp.pl",
    "o2.pl",
    "interia.pl",
    "onet.pl",
    "btinternet.com",
    "sky.com",
    "comcast.net",
    "verizon.net",
    "att.net",
    "sbcglobal.net",
    "bellsouth.net",
    "cox.net",
    "mailinator.com",
    "guerrillamail.com",
    "10minutemail.com",
    "temp-mail.org",
    "yopmail.com",
    "trashmail.com",
    "sharklasers.com",
    "getnada.com",
    "dispostable.com",
    "maildrop.cc",
    "mail-system.invalid",
];

impl FreeMail {
    pub fn new(extra: &[String]) -> Self {
        let mut exact = std::collections::HashSet::new();
        let mut any_tld = std::collections::HashSet::new();
        for d in BUILTIN_FREE_MAIL
            .iter()
            .map(|s| s.to_string())
            .chain(extra.iter().cloned())
        {
            let d = d.trim().to_lowercase();
            match d.strip_suffix(".*") {
                Some(name) => any_tld.insert(name.to_string()),
                None => exact.insert(d),
            };
        }
        FreeMail { exact, any_tld }
    }

    pub fn contains(&self, d: &RegistrableDomain) -> bool {
        let s = d.as_str();
        self.exact.contains(s)
            || s.split('.')
                .next()
                .is_some_and(|first| self.any_tld.contains(first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_case_folded_and_idna() {
        let e = EmailAddress::parse(" <Ada.Lovelace@Bücher.Example> ").unwrap();
        assert_eq!(e.as_str(), "ada.lovelace@xn--bcher-kva.example");
        assert!(EmailAddress::parse("no-at-sign").is_err());
        assert!(EmailAddress::parse("a b@c.d").is_err());
    }

    #[test]
    fn phone_is_e164_with_default_region() {
        assert_eq!(
            PhoneNumber::parse("(415) 555-0100", "US").unwrap().as_str(),
            "+14155550100"
        );
        assert_eq!(
            PhoneNumber::parse("+1 415 555 0100", "IT")
                .unwrap()
                .as_str(),
            "+14155550100"
        );
        assert_eq!(
            PhoneNumber::parse("06 6982 1234", "IT").unwrap().as_str(),
            "+390669821234"
        );
        assert!(PhoneNumber::parse("12", "US").is_err());
        assert!(PhoneNumber::parse("hello", "US").is_err());
    }

    #[test]
    fn handles_are_namespaced() {
        assert_eq!(
            Handle::parse("WhatsApp:4155550100").unwrap().as_str(),
            "whatsapp:4155550100"
        );
        assert_eq!(
            Handle::parse("telegram:@Ada").unwrap().as_str(),
            "telegram:@ada"
        );
        assert!(Handle::parse("nonetwork").is_err());
        assert!(Handle::parse(":x").is_err());
    }

    #[test]
    fn registrable_domain_uses_psl() {
        assert_eq!(
            RegistrableDomain::of("eu.mail.acme.co.uk")
                .unwrap()
                .as_str(),
            "acme.co.uk"
        );
        assert_eq!(
            RegistrableDomain::of("Mail.Example.COM").unwrap().as_str(),
            "example.com"
        );
        assert!(RegistrableDomain::of("co.uk").is_none());
    }

    #[test]
    fn free_mail_patterns() {
        let f = FreeMail::new(&["example-free.org".into()]);
        for d in [
            "gmail.com",
            "yahoo.co.uk",
            "gmx.de",
            "yandex.ru",
            "example-free.org",
        ] {
            assert!(f.contains(&RegistrableDomain::of(d).unwrap()), "{d}");
        }
        assert!(!f.contains(&RegistrableDomain::of("acme.com").unwrap()));
    }
}
