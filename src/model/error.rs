//! Refusals by the help desk's own rules, as distinct from storage faults:
//! an unknown user, a merge of a profile into itself, a domain the desk may
//! not give to an organization. Raised by the pipeline's checks and by the
//! store where the rule needs the rows (inside the transaction that would
//! break it); callers answer them as the client's mistake (404, 409, 422,
//! CLI exit 1), never retried.

/// A request the desk's rules refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The request is wrong (a self-merge, a refused domain, a bad contact).
    #[error("{0}")]
    Invalid(String),
    /// What the request names does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with the current state (replaying a message
    /// that was already stored, a domain held by another organization).
    #[error("{0}")]
    Conflict(String),
}

#[cfg(test)]
mod tests {
    use super::DomainError;

    #[test]
    fn messages_name_what_was_refused() {
        assert_eq!(
            DomainError::NotFound("user 7".into()).to_string(),
            "user 7 not found"
        );
        assert_eq!(DomainError::Conflict("taken".into()).to_string(), "taken");
    }
}
