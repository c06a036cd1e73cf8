//! An address setting as mail clients write it: `addr` or `Name <addr>`.

use serde::Deserialize;

/// `support@example.com` or `Support <support@example.com>`: the whole text
/// goes into headers (From, Reply-To), the address part is what intake
/// compares and validates.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Address(String);

impl Address {
    pub fn new(s: impl Into<String>) -> Address {
        Address(s.into())
    }

    /// The text as configured, for a header.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address part: inside the last `<…>` when the text ends with one.
    pub fn email(&self) -> &str {
        let t = self.0.trim();
        match (t.strip_suffix('>'), t.rfind('<')) {
            (Some(inner), Some(lt)) => inner[lt + 1..].trim(),
            _ => t,
        }
    }

    /// The display name, if any (quotes kept as written).
    pub fn name(&self) -> Option<&str> {
        let t = self.0.trim();
        let lt = t.rfind('<').filter(|_| t.ends_with('>'))?;
        Some(t[..lt].trim()).filter(|n| !n.is_empty())
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Address;

    #[test]
    fn the_address_part_is_found_with_or_without_a_name() {
        let a = Address::new("Support <support@example.com>");
        assert_eq!(a.email(), "support@example.com");
        assert_eq!(a.name(), Some("Support"));
        let a = Address::new("\"Acme, Support\" < help@acme.example >");
        assert_eq!(a.email(), "help@acme.example");
        assert_eq!(a.name(), Some("\"Acme, Support\""));
        let a = Address::new("support@example.com");
        assert_eq!(a.email(), "support@example.com");
        assert_eq!(a.name(), None);
        assert_eq!(Address::new("<x@y.example>").name(), None);
    }
}
