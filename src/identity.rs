//! Contact points: raw strings in, normalised newtypes out.
//!
//! * [`EmailAddress`]: the one address normaliser. Trimmed; the local part
//!   unquoted when it needs no quotes, NFKC-normalised and lower-cased (as most
//!   providers treat it); the domain through [`normalise_domain`].
//! * [`PhoneNumber`]: E.164, parsed with the configured default region; an
//!   invalid number is an error, never a guess.
//! * [`Handle`]: `network:id`, network lower-cased (`whatsapp:4155550100`).
//! * [`RegistrableDomain`]: the public-suffix-list registrable domain
//!   (`eu.mail.acme.co.uk` → `acme.co.uk`).
//! * [`OwnAddresses`]: the desk's own addresses and domains, compared in
//!   these normalised forms only; [`FreeMail`]: domains that are never an
//!   organization's.

pub mod addr_spec;
mod agents;
mod free_mail;
mod own;

pub use agents::Agents;
pub use free_mail::FreeMail;
pub use own::OwnAddresses;

use serde::Serialize;
use std::fmt;
use unicode_normalization::UnicodeNormalization;

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

/// The one domain normaliser: IDNA with UTS-46 mapping (case, fullwidth and
/// other compatibility forms, ideographic full stops), Unicode labels to
/// punycode, and no trailing dot. `EXAMPLE.com.`, `ｅｘａｍｐｌｅ．ｃｏｍ` and
/// `example.com` are one domain. None when it is not a domain name.
pub fn normalise_domain(raw: &str) -> Option<String> {
    let d = raw.trim().trim_end_matches('.');
    let ascii = idna::domain_to_ascii(d).ok()?;
    // A fullwidth or ideographic trailing dot is a dot only after mapping.
    let ascii = ascii.trim_end_matches('.');
    (!ascii.is_empty() && !ascii.starts_with('.') && !ascii.contains(".."))
        .then(|| ascii.to_string())
}

/// RFC 5322 `atext` plus UTF-8 (RFC 6532): a local part made of these and
/// single inner dots needs no quotes, and `"x"@d` is the same mailbox as `x@d`.
fn is_dot_atom(s: &str) -> bool {
    let atext =
        |c: char| c.is_ascii_alphanumeric() || !c.is_ascii() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    !s.is_empty()
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.contains("..")
        && s.chars().all(|c| c == '.' || atext(c))
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The local part as compared and stored: unquoted when the quotes add
/// nothing, NFKC (fullwidth and other compatibility forms folded), lower-case.
fn normalise_local(local: &str) -> String {
    let l = match local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
        Some(inner) if is_dot_atom(inner) => inner,
        _ => local,
    };
    if l.is_ascii() {
        l.to_ascii_lowercase()
    } else {
        l.nfkc().collect::<String>().to_lowercase()
    }
}

/// A normalised email address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Normalise `raw` (see the module doc): every spelling of one mailbox
    /// gives the same value.
    pub fn parse(raw: &str) -> Result<Self, IdentityError> {
        let bad = || IdentityError::Email(raw.to_string());
        let s = raw
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim();
        // One addr-spec: a quoted local part may hold spaces and `@`; an
        // unquoted one holds neither, so `a@b.com@c.com` is no address.
        let (local, domain) = addr_spec::split(s).ok_or_else(bad)?;
        let local = normalise_local(local);
        let domain = normalise_domain(domain).ok_or_else(bad)?;
        if local.is_empty()
            || local.len() > 64
            || local.len() + 1 + domain.len() > 254
            || local.chars().any(char::is_control)
            || !domain.contains('.') && domain != "localhost"
        {
            return Err(bad());
        }
        Ok(EmailAddress(format!("{local}@{domain}")))
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
        let host = normalise_domain(host)?;
        let d = psl::domain_str(&host)?;
        Some(RegistrableDomain(d.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
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
    fn one_normal_form_for_every_spelling() {
        let n = |a: &str| EmailAddress::parse(a).map(|e| e.as_str().to_string());
        for a in [
            "support@example.com",
            "Support@EXAMPLE.com.",
            "support@example.com..",
            "support@ｅｘａｍｐｌｅ.com",
            "support@ＥＸＡＭＰＬＥ．ＣＯＭ．",
            "support@example。com",
            "ｓｕｐｐｏｒｔ@example.com",
            "\"support\"@example.com",
            "SUPPORT@EXAMPLE.COM",
        ] {
            assert_eq!(n(a).as_deref(), Ok("support@example.com"), "{a}");
        }
        for a in [
            "ada@bücher.example",
            "ADA@BÜCHER.EXAMPLE.",
            "ada@XN--BCHER-KVA.example",
        ] {
            assert_eq!(n(a).as_deref(), Ok("ada@xn--bcher-kva.example"), "{a}");
        }
        // Quotes that matter stay; what is not an address stays refused.
        assert_eq!(n("\"a.b\"@x.com").as_deref(), Ok("a.b@x.com"));
        assert!(n("\"a..b\"@x.com").unwrap().starts_with('"'));
        for bad in [
            "a@",
            "@x.com",
            "a@.",
            "a@x..com",
            "a@.x.com",
            "a\u{0}b@x.com",
            "a\u{a0}b@x.com",
        ] {
            assert!(n(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            normalise_domain("Ｅｘａｍｐｌｅ．ＣＯＭ．").as_deref(),
            Some("example.com")
        );
        assert_eq!(normalise_domain(".").as_deref(), None);
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
