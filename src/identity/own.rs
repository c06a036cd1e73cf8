//! Our own addresses and domains, normalised once. Loop detection, the
//! participant and recipient checks and organization creation ask this set,
//! so `support@example.com.`, `SUPPORT@ｅｘａｍｐｌｅ.com` and the punycode or
//! Unicode form of an IDN address are all ours when `support@example.com` is.

use super::{normalise_domain, EmailAddress, RegistrableDomain};
use std::collections::HashSet;

/// The desk's addresses (desk, mailboxes, SMTP sender), its domain, and the
/// registrable domains of both: never a customer's.
#[derive(Debug, Clone, Default)]
pub struct OwnAddresses {
    addresses: HashSet<EmailAddress>,
    /// The (normalised) domains of `addresses`.
    address_domains: HashSet<String>,
    desk_domain: String,
    domains: HashSet<RegistrableDomain>,
}

impl OwnAddresses {
    /// Builds the set from our addresses and the desk domain, in any spelling
    /// (addresses that do not parse are left out: configuration validation
    /// reports them).
    pub fn new(addresses: impl IntoIterator<Item = String>, desk_domain: &str) -> Self {
        let addresses: HashSet<EmailAddress> = addresses
            .into_iter()
            .filter_map(|a| EmailAddress::parse(&a).ok())
            .collect();
        let address_domains = addresses.iter().map(|a| a.domain().to_string()).collect();
        let desk_domain = normalise_domain(desk_domain).unwrap_or_default();
        let domains = addresses
            .iter()
            .map(EmailAddress::domain)
            .chain([desk_domain.as_str()])
            .filter_map(RegistrableDomain::of)
            .collect();
        OwnAddresses {
            addresses,
            address_domains,
            desk_domain,
            domains,
        }
    }

    /// True when `raw`, in any spelling, is one of our addresses.
    pub fn contains(&self, raw: &str) -> bool {
        // An ASCII address normalises its domain to the lower-case text
        // without trailing dots (UTS-46 only lower-cases ASCII): when that is
        // none of our domains, the address is not ours and needs no parse.
        if raw.is_ascii() {
            let s = raw
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim();
            let domain = s.rsplit_once('@').map_or("", |(_, d)| d);
            let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
            if !self.address_domains.contains(&domain) {
                return false;
            }
        }
        EmailAddress::parse(raw).is_ok_and(|e| self.is_ours(&e))
    }

    /// True when the normalised address is one of ours.
    pub fn is_ours(&self, e: &EmailAddress) -> bool {
        self.addresses.contains(e)
    }

    /// True when `raw` (a loop header's value) names our desk domain.
    pub fn is_desk_domain(&self, raw: &str) -> bool {
        let raw = raw.trim().trim_start_matches('<').trim_end_matches('>');
        !self.desk_domain.is_empty() && normalise_domain(raw).as_deref() == Some(&self.desk_domain)
    }

    /// True for the registrable domain of the desk domain or of one of our
    /// addresses: it never becomes a customer organization.
    pub fn owns_domain(&self, d: &RegistrableDomain) -> bool {
        self.domains.contains(d)
    }

    /// The desk domain, normalised (ASCII, lower-case, no trailing dot).
    pub fn desk_domain(&self) -> &str {
        &self.desk_domain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> OwnAddresses {
        OwnAddresses::new(
            [
                "Support@Example.com".to_string(),
                "hilfe@Bücher.example".to_string(),
            ],
            "Desk.Example.com.",
        )
    }

    #[test]
    fn every_spelling_of_our_address_is_ours() {
        let o = own();
        for a in [
            "support@example.com",
            "SUPPORT@EXAMPLE.COM",
            "support@example.com.",
            "<support@example.com.>",
            "support@ｅｘａｍｐｌｅ.com",
            "support@ＥＸＡＭＰＬＥ．ＣＯＭ",
            "support@example.com．",
            "ｓｕｐｐｏｒｔ@example.com",
            "\"support\"@example.com",
            "hilfe@bücher.example",
            "HILFE@BÜCHER.EXAMPLE",
            "hilfe@xn--bcher-kva.example",
            "HILFE@XN--BCHER-KVA.EXAMPLE.",
        ] {
            assert!(o.contains(a), "{a}");
        }
        for a in [
            "support2@example.com",
            "support@example.org",
            "\"sup port\"@example.com",
            "support@example..com",
            "nobody",
        ] {
            assert!(!o.contains(a), "{a}");
        }
    }

    #[test]
    fn desk_domain_and_our_domains() {
        let o = own();
        assert_eq!(o.desk_domain(), "desk.example.com");
        for d in [
            "desk.example.com",
            "DESK.EXAMPLE.COM.",
            "<desk.ｅｘａｍｐｌｅ.com>",
        ] {
            assert!(o.is_desk_domain(d), "{d}");
        }
        assert!(!o.is_desk_domain("example.com"));
        for d in [
            "example.com",
            "mail.EXAMPLE.com.",
            "bücher.example",
            "xn--bcher-kva.example",
        ] {
            assert!(o.owns_domain(&RegistrableDomain::of(d).unwrap()), "{d}");
        }
        assert!(!o.owns_domain(&RegistrableDomain::of("acme.com").unwrap()));
    }
}
