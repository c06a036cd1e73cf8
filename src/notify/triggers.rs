//! Triggers: `[[triggers]]` parsed into typed rules, and the pure planner that
//! turns one event into notifications and ticket changes.

use super::render::{Templates, TplRef};

pub use crate::model::EventKind;

/// Which organizations a trigger applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgCondition {
    /// The requester has no organization.
    None,
    /// The requester's organization is one of these (case-insensitive).
    Names(Vec<String>),
}

/// Conditions; all given ones must hold.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    pub channel: Option<Vec<String>>,
    pub organization: Option<OrgCondition>,
    pub requester_is_new: Option<bool>,
    pub status: Option<Vec<String>>,
    /// Message classes; only `normal` can ever notify.
    pub class: Vec<String>,
    /// Who wrote the comment: `end_user` or `agent`.
    pub author_role: Option<Vec<String>>,
    /// The comment is a customer's message an agent forwarded.
    pub forwarded_by_agent: Option<bool>,
}

/// What a trigger does.
#[derive(Debug, Clone)]
pub enum Action {
    NotifyRequester(TplRef),
    Notify { to: String, tpl: TplRef },
    Set(TicketChanges),
}

pub use crate::model::TicketChanges;

/// One typed trigger.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub name: String,
    pub on: EventKind,
    pub conditions: Conditions,
    pub actions: Vec<Action>,
}

/// Every enabled trigger with its compiled templates.
#[derive(Debug, Default)]
pub struct TriggerSet {
    pub triggers: Vec<Trigger>,
    /// Disabled triggers: never planned, but what they queued is still rendered.
    pub disabled: Vec<Trigger>,
    pub templates: Templates,
}

impl TriggerSet {
    /// Whether an event of `kind` can lead to anything: a trigger on it, or a
    /// publication (which fires what the ticket skipped while private).
    pub fn wants(&self, kind: EventKind) -> bool {
        match kind {
            EventKind::TicketPublished => !self.triggers.is_empty(),
            k => self.triggers.iter().any(|t| t.on == k),
        }
    }

    /// The templates of action `action` of trigger `name` (enabled or not).
    pub fn template(&self, name: &str, action: usize) -> Option<&TplRef> {
        let t = self
            .triggers
            .iter()
            .chain(&self.disabled)
            .find(|t| t.name == name)?;
        match t.actions.get(action)? {
            Action::NotifyRequester(tpl) | Action::Notify { tpl, .. } => Some(tpl),
            Action::Set(_) => None,
        }
    }
}

/// What the planner knows about one event.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventContext {
    #[serde(skip)]
    pub kind: Option<EventKind>,
    #[serde(skip)]
    pub channel: String,
    #[serde(skip)]
    pub requester_is_new: bool,
    #[serde(skip)]
    pub class: String,
    /// `end_user` or `agent`.
    #[serde(skip)]
    pub author_role: String,
    /// A customer's message an agent forwarded on their behalf.
    #[serde(skip)]
    pub forwarded_by_agent: bool,
    pub ticket: TicketVars,
    pub requester: RequesterVars,
    pub organization: Option<OrgVars>,
    pub comment: CommentVars,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TicketVars {
    pub id: i64,
    pub tag: String,
    pub subject: String,
    pub status: String,
    pub url: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RequesterVars {
    pub name: String,
    pub email: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct OrgVars {
    pub name: String,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CommentVars {
    /// The comment's visible text: without quoted history, forwarded
    /// header blocks and signature.
    pub body: String,
    /// The comment's whole text, as received.
    pub full_body: String,
}

/// A rendered notification, before the notifier's own checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedNotification {
    pub trigger: String,
    /// `None` when the requester has no email address.
    pub to: Option<String>,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// The planner's answer for one event.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub notifications: Vec<PlannedNotification>,
    pub changes: TicketChanges,
}

/// A notification a trigger calls for, not rendered yet: the outbox stores
/// the trigger name and action index, the sender renders at send time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub trigger: String,
    pub action: usize,
    /// `None` when the requester has no email address.
    pub to: Option<String>,
}

/// Which notifications and ticket changes the triggers call for. Pure; only
/// the conditions' fields of `ctx` matter (no template is rendered).
pub fn select(cfg: &TriggerSet, ctx: &EventContext) -> (Vec<Selected>, TicketChanges) {
    let mut out = Vec::new();
    let mut changes = TicketChanges::default();
    for t in cfg
        .triggers
        .iter()
        .filter(|t| Some(t.on) == ctx.kind && matches(&t.conditions, ctx))
    {
        for (i, a) in t.actions.iter().enumerate() {
            match a {
                Action::Set(c) => {
                    changes.assignee = c.assignee.clone().or(changes.assignee.take());
                    changes.group = c.group.clone().or(changes.group.take());
                    changes.tags.extend(c.tags.iter().cloned());
                }
                Action::NotifyRequester(_) | Action::Notify { .. } => out.push(Selected {
                    trigger: t.name.clone(),
                    action: i,
                    to: match a {
                        Action::Notify { to, .. } => Some(to.clone()),
                        _ => ctx.requester.email.clone(),
                    },
                }),
            }
        }
    }
    changes.tags.sort();
    changes.tags.dedup();
    (out, changes)
}

/// Which triggers fire for `ctx`, rendered (`select` then the templates). Pure: no I/O.
pub fn plan(cfg: &TriggerSet, ctx: &EventContext) -> Plan {
    let (selected, changes) = select(cfg, ctx);
    let mut out = Plan {
        notifications: Vec::new(),
        changes,
    };
    for s in selected {
        let Some(tpl) = cfg.template(&s.trigger, s.action) else {
            continue;
        };
        match cfg.templates.render(tpl, ctx) {
            Ok((subject, text, html)) => out.notifications.push(PlannedNotification {
                trigger: s.trigger,
                to: s.to,
                subject,
                text,
                html,
            }),
            Err(e) => {
                tracing::error!(trigger = %s.trigger, error = %e, "template failed to render")
            }
        }
    }
    out
}

fn matches(c: &Conditions, ctx: &EventContext) -> bool {
    let in_list = |l: &Option<Vec<String>>, v: &str| {
        l.as_ref()
            .is_none_or(|l| l.iter().any(|x| x.eq_ignore_ascii_case(v)))
    };
    in_list(&c.channel, &ctx.channel)
        && in_list(&c.status, &ctx.ticket.status)
        && c.class.iter().any(|x| x.eq_ignore_ascii_case(&ctx.class))
        && in_list(&c.author_role, &ctx.author_role)
        && c.requester_is_new.is_none_or(|n| n == ctx.requester_is_new)
        && c.forwarded_by_agent
            .is_none_or(|f| f == ctx.forwarded_by_agent)
        && match (&c.organization, &ctx.organization) {
            (None, _) => true,
            (Some(OrgCondition::None), o) => o.is_none(),
            (Some(OrgCondition::Names(_)), None) => false,
            (Some(OrgCondition::Names(n)), Some(o)) => {
                n.iter().any(|x| x.eq_ignore_ascii_case(&o.name))
            }
        }
}

impl TriggerSet {
    /// What the triggers on `kind` need to know.
    pub fn needs(&self, kind: EventKind) -> crate::model::Needs {
        let mut n = crate::model::Needs::default();
        for t in self.triggers.iter().filter(|t| t.on == kind) {
            n.org_name |= matches!(t.conditions.organization, Some(OrgCondition::Names(_)));
            n.requester_is_new |= t.conditions.requester_is_new.is_some();
            n.requester_email |= t
                .actions
                .iter()
                .any(|a| matches!(a, Action::NotifyRequester(_)));
        }
        n
    }
}
