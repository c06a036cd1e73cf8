//! Threading: which ticket a message joins, and how.
//!
//! Takes what the store knows of the candidate ticket and the sender, gives a
//! [`Decision`]. A message joins a ticket by its references (our own outgoing
//! Message-IDs or stored inbound ones), by our tag in the subject, or by a
//! gateway conversation id; never by subject text alone. Only participants
//! add public comments; anyone else's message becomes a flagged internal note.

use crate::classify::MailClass;
use crate::identity::EmailAddress;

/// The subject tag, e.g. `[#{id}]` → `[#123]`.
#[derive(Debug, Clone)]
pub struct TicketTag {
    prefix: String,
    suffix: String,
}

impl TicketTag {
    /// `format` must contain `{id}`.
    pub fn new(format: &str) -> Self {
        let (prefix, suffix) = format.split_once("{id}").unwrap_or((format, ""));
        TicketTag {
            prefix: prefix.to_string(),
            suffix: suffix.to_string(),
        }
    }

    pub fn format(&self, id: i64) -> String {
        format!("{}{}{}", self.prefix, id, self.suffix)
    }

    /// The ticket number of the first well-formed tag in `subject`.
    pub fn find(&self, subject: &str) -> Option<i64> {
        let mut rest = subject;
        while let Some(pos) = rest.find(self.prefix.as_str()) {
            let after = &rest[pos + self.prefix.len()..];
            // 19 digits are enough to refuse a run longer than 18; taking the whole
            // run would make a subject of digits quadratic with an empty prefix.
            let digits: String = after
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .take(19)
                .collect();
            if !digits.is_empty()
                && digits.len() <= 18
                && after[digits.len()..].starts_with(self.suffix.as_str())
            {
                return digits.parse().ok();
            }
            // Step past this match; by a whole character when the prefix is empty.
            let Some(first) = after.chars().next() else {
                break;
            };
            let step = if self.prefix.is_empty() {
                first.len_utf8()
            } else {
                self.prefix.len()
            };
            rest = &rest[pos + step..];
        }
        None
    }
}

pub use crate::model::TicketStatus;

/// What the store knows about a candidate ticket.
#[derive(Debug, Clone)]
pub struct TicketState {
    pub id: i64,
    pub status: TicketStatus,
    pub public: bool,
    pub requester_id: i64,
    pub organization_id: Option<i64>,
    /// Addresses allowed to comment besides the requester, normalised, so
    /// any spelling of a participant's address is that participant.
    pub participants: std::collections::HashSet<EmailAddress>,
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Open a new ticket (`follow_up_of` for a participant's reply to a closed one).
    NewTicket { follow_up_of: Option<i64> },
    /// Add a comment to the ticket.
    Append {
        ticket_id: i64,
        public: bool,
        /// New status when the message reopens the ticket.
        reopen: Option<TicketStatus>,
        /// Why the comment is internal although the ticket is public.
        flag: Option<&'static str>,
    },
}

/// The tickets a message is linked to, strongest link first; the message
/// joins the first and the others are recorded as related (never merged).
///
/// The order, the documented rule: (1) a stored message it names, nearest
/// first (In-Reply-To, then References from the last to the first); (2) our
/// tag in its subject; (3) a stored message that names it (it is the late
/// parent of a reply stored before it), oldest ticket first; (4) a stored
/// message that names the same ancestor it names, nearest ancestor first.
/// `direct` and `shared` follow the message's references in that order.
pub fn linked_tickets(
    direct: impl IntoIterator<Item = i64>,
    tag: Option<i64>,
    named_by: &[i64],
    shared: impl IntoIterator<Item = i64>,
) -> Vec<i64> {
    let mut late: Vec<i64> = named_by.to_vec();
    late.sort_unstable();
    let mut out: Vec<i64> = Vec::new();
    for t in direct.into_iter().chain(tag).chain(late).chain(shared) {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// The names a stored message keeps for threading: its references, nearest
/// first as [`crate::model::PreparedMessage::refs`] holds them, bounded to the
/// [`NAMES_KEPT`] nearest and the last (the thread's root). Only ids of the
/// shape `left@right` count: mailers write placeholders such as `<yes>` that
/// many unrelated mails share.
pub fn kept_names(refs: &[String]) -> impl Iterator<Item = &String> {
    let real: Vec<&String> = refs
        .iter()
        .filter(|r| {
            r.split_once('@')
                .is_some_and(|(l, r)| !l.is_empty() && !r.is_empty())
        })
        .collect();
    let near = real.len().min(NAMES_KEPT);
    let root = real.get(near..).and_then(|rest| rest.last()).copied();
    real.into_iter().take(near).chain(root)
}

/// How many of a message's nearest references are kept with its ticket.
pub const NAMES_KEPT: usize = 11;

/// Flag recorded on a non-participant's message.
pub const NOT_PARTICIPANT: &str = "sender is not a participant of this ticket";

/// Flag recorded on an agent's reply to a closed ticket.
pub const AGENT_ON_CLOSED: &str = "agent reply to a closed ticket";

/// Who wrote a message, as threading sees it.
#[derive(Debug, Clone, Copy)]
pub struct Author<'a> {
    pub user: i64,
    pub email: Option<&'a EmailAddress>,
    /// One of the desk's agents (authenticated where senders are verified).
    pub agent: bool,
}

/// Decide for a message from `author`; `trusted_conversation` when it came
/// by a gateway conversation the ticket belongs to.
pub fn decide(
    ticket: Option<&TicketState>,
    author: Author<'_>,
    trusted_conversation: bool,
    class: MailClass,
) -> Decision {
    let Some(t) = ticket else {
        return Decision::NewTicket { follow_up_of: None };
    };
    if author.agent {
        // An agent answers on the ticket: never a stranger, never a new
        // follow-up with the agent as its requester, and the status is the
        // agent's to set, not the mail's. A closed ticket stays closed and
        // keeps the reply as an internal note.
        let closed = t.status == TicketStatus::Closed;
        return Decision::Append {
            ticket_id: t.id,
            public: t.public && !closed,
            reopen: None,
            flag: closed.then_some(AGENT_ON_CLOSED),
        };
    }
    let (sender_user, sender_email) = (author.user, author.email);
    let participant = trusted_conversation
        || t.requester_id == sender_user
        || sender_email.is_some_and(|e| t.participants.contains(e));
    if t.status == TicketStatus::Closed {
        // A closed ticket stays closed; a participant's reply opens a linked
        // follow-up, a stranger's opens an unrelated ticket.
        return Decision::NewTicket {
            follow_up_of: participant.then_some(t.id),
        };
    }
    if !participant {
        return Decision::Append {
            ticket_id: t.id,
            public: false,
            reopen: None,
            flag: Some(NOT_PARTICIPANT),
        };
    }
    // Automatic mail (out-of-office, bounces) never reopens a ticket.
    let reopen = (class == MailClass::Normal
        && matches!(t.status, TicketStatus::Solved | TicketStatus::Pending))
    .then_some(TicketStatus::Open);
    Decision::Append {
        ticket_id: t.id,
        public: t.public,
        reopen,
        flag: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(a: &str) -> EmailAddress {
        EmailAddress::parse(a).unwrap()
    }

    fn who(user: i64, email: Option<&EmailAddress>, agent: bool) -> Author<'_> {
        Author { user, email, agent }
    }

    fn ticket(status: TicketStatus) -> TicketState {
        TicketState {
            id: 7,
            status,
            public: true,
            requester_id: 1,
            organization_id: None,
            participants: [email("cc@acme.com")].into_iter().collect(),
        }
    }

    #[test]
    fn tag_parsing() {
        let t = TicketTag::new("[#{id}]");
        assert_eq!(t.find("Re: [#42] printer"), Some(42));
        assert_eq!(t.find("[#] [#x] [#17]"), Some(17));
        assert_eq!(t.find("#42 printer"), None);
        assert_eq!(t.find("[#42 printer"), None);
        let t = TicketTag::new("[Ticket#{id}]");
        assert_eq!(t.find("AW: [Ticket#9001] x"), Some(9001));
        assert_eq!(t.format(5), "[Ticket#5]");
        let bare = TicketTag::new("{id}");
        assert_eq!(bare.find("éà 12"), Some(12));
        assert_eq!(bare.find("ünïcödé"), None);
        // Runs longer than 18 digits are no id; the scan moves on inside the run.
        assert_eq!(bare.find(&"1".repeat(20)), Some(111_111_111_111_111_111));
        assert_eq!(t.find(&format!("[#{}]", "1".repeat(19))), None);
    }

    #[test]
    fn participants_append_publicly_and_reopen() {
        let d = decide(
            Some(&ticket(TicketStatus::Solved)),
            who(1, None, false),
            false,
            MailClass::Normal,
        );
        assert_eq!(
            d,
            Decision::Append {
                ticket_id: 7,
                public: true,
                reopen: Some(TicketStatus::Open),
                flag: None
            }
        );
        let d = decide(
            Some(&ticket(TicketStatus::Solved)),
            who(9, Some(&email("CC@ACME.COM.")), false),
            false,
            MailClass::AutoReply,
        );
        assert_eq!(
            d,
            Decision::Append {
                ticket_id: 7,
                public: true,
                reopen: None,
                flag: None
            }
        );
    }

    #[test]
    fn strangers_become_internal_notes() {
        let d = decide(
            Some(&ticket(TicketStatus::Open)),
            who(9, Some(&email("evil@x.com")), false),
            false,
            MailClass::Normal,
        );
        assert_eq!(
            d,
            Decision::Append {
                ticket_id: 7,
                public: false,
                reopen: None,
                flag: Some(NOT_PARTICIPANT)
            }
        );
    }

    #[test]
    fn closed_tickets_get_follow_ups() {
        assert_eq!(
            decide(
                Some(&ticket(TicketStatus::Closed)),
                who(1, None, false),
                false,
                MailClass::Normal
            ),
            Decision::NewTicket {
                follow_up_of: Some(7)
            }
        );
        assert_eq!(
            decide(
                Some(&ticket(TicketStatus::Closed)),
                who(9, None, false),
                false,
                MailClass::Normal
            ),
            Decision::NewTicket { follow_up_of: None }
        );
    }

    #[test]
    fn private_ticket_comments_are_internal() {
        let mut t = ticket(TicketStatus::Open);
        t.public = false;
        assert_eq!(
            decide(Some(&t), who(1, None, false), false, MailClass::Normal),
            Decision::Append {
                ticket_id: 7,
                public: false,
                reopen: None,
                flag: None
            }
        );
    }

    #[test]
    fn agents_answer_on_the_ticket_without_reopening_it() {
        let ann = email("ann@desk.example");
        for (status, public, flag) in [
            (TicketStatus::Open, true, None),
            (TicketStatus::Pending, true, None),
            (TicketStatus::Solved, true, None),
            (TicketStatus::Closed, false, Some(AGENT_ON_CLOSED)),
        ] {
            assert_eq!(
                decide(
                    Some(&ticket(status)),
                    who(42, Some(&ann), true),
                    false,
                    MailClass::Normal
                ),
                Decision::Append {
                    ticket_id: 7,
                    public,
                    reopen: None,
                    flag
                },
                "{status:?}"
            );
        }
        // Not an agent: the same address is a stranger.
        assert_eq!(
            decide(
                Some(&ticket(TicketStatus::Open)),
                who(42, Some(&ann), false),
                false,
                MailClass::Normal
            ),
            Decision::Append {
                ticket_id: 7,
                public: false,
                reopen: None,
                flag: Some(NOT_PARTICIPANT)
            }
        );
    }

    #[test]
    fn links_rank_direct_then_tag_then_late_parent_then_shared_ancestor() {
        assert_eq!(
            linked_tickets([5, 3, 5], Some(9), &[8, 2], [7, 3]),
            vec![5, 3, 9, 2, 8, 7]
        );
        assert_eq!(linked_tickets([], None, &[4], []), vec![4]);
        assert!(linked_tickets([], None, &[], []).is_empty());
        let refs: Vec<String> = (0..20).map(|i| format!("r{i}@x")).collect();
        let kept: Vec<&String> = kept_names(&refs).collect();
        assert_eq!(kept.len(), NAMES_KEPT + 1);
        assert_eq!(kept[0], "r0@x");
        assert_eq!(kept[NAMES_KEPT], "r19@x");
        let few: Vec<String> = vec![
            "a@x".into(),
            "yes".into(),
            "@x".into(),
            "b@".into(),
            "b@x".into(),
        ];
        assert_eq!(kept_names(&few).collect::<Vec<_>>(), vec!["a@x", "b@x"]);
    }
}
