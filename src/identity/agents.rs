//! The desk's agents as configured (`[agents] addresses` and `domains`),
//! normalised once. Agents added at run time (admin API, CLI) are users
//! marked in the database; the store reads that mark with the sender.

use super::{normalise_domain, EmailAddress};
use std::collections::HashSet;

/// Configured agent addresses and domains, and the private-note marker.
#[derive(Debug, Clone, Default)]
pub struct Agents {
    addresses: HashSet<EmailAddress>,
    domains: HashSet<String>,
    /// A reply whose text starts with this is an internal note.
    pub private_marker: String,
}

impl Agents {
    /// From the configuration, in any spelling (what does not parse is
    /// left out: configuration validation reports it).
    pub fn new(
        addresses: impl IntoIterator<Item = String>,
        domains: impl IntoIterator<Item = String>,
        private_marker: &str,
    ) -> Self {
        Agents {
            addresses: addresses
                .into_iter()
                .filter_map(|a| EmailAddress::parse(&a).ok())
                .collect(),
            domains: domains
                .into_iter()
                .filter_map(|d| normalise_domain(&d))
                .collect(),
            private_marker: private_marker.trim().to_string(),
        }
    }

    /// An agent by configuration: a listed address, or an address at a
    /// listed domain or one of its subdomains.
    pub fn is_agent(&self, a: &EmailAddress) -> bool {
        if self.addresses.contains(a) {
            return true;
        }
        self.owns_domain(a.domain())
    }

    /// A configured agent domain (or a subdomain of one).
    pub fn owns_domain(&self, d: &str) -> bool {
        let d = normalise_domain(d).unwrap_or_default();
        self.domains
            .iter()
            .any(|x| d == *x || d.strip_suffix(x.as_str()).is_some_and(|p| p.ends_with('.')))
    }

    /// Whether an agent's text asks to be an internal note.
    pub fn is_private(&self, body: &str) -> bool {
        !self.private_marker.is_empty() && body.trim_start().starts_with(&self.private_marker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_by_address_domain_and_subdomain_in_any_spelling() {
        let a = Agents::new(
            ["Ann@Team.Example".to_string()],
            ["desk.example.".to_string()],
            "#note",
        );
        let e = |s: &str| EmailAddress::parse(s).unwrap();
        assert!(a.is_agent(&e("ann@team.example")));
        assert!(a.is_agent(&e("bob@DESK.example")));
        assert!(a.is_agent(&e("bob@eu.desk.example")));
        assert!(!a.is_agent(&e("bob@notdesk.example")));
        assert!(!a.is_agent(&e("carl@team.example")));
        assert!(a.is_private("  #note call them back"));
        assert!(!a.is_private("Hello, #note"));
        assert!(!Agents::new([], [], "").is_private("#note"));
    }
}
