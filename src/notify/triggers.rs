//! Triggers: `[[triggers]]` parsed into typed rules, and the pure planner that
//! turns one event into notifications and ticket changes.

use super::render::{Templates, TplRef};
use crate::config::{locate, Config, Problem, TriggerConfig};

/// The events triggers react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    TicketCreated,
    CommentAdded,
    TicketPublished,
}

impl EventKind {
    pub fn parse(s: &str) -> Option<EventKind> {
        match s {
            "ticket_created" => Some(EventKind::TicketCreated),
            "comment_added" => Some(EventKind::CommentAdded),
            "ticket_published" => Some(EventKind::TicketPublished),
            _ => None,
        }
    }
}

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
}

/// What a trigger does.
#[derive(Debug, Clone)]
pub enum Action {
    NotifyRequester(TplRef),
    Notify { to: String, tpl: TplRef },
    Set(TicketChanges),
}

/// Changes `set` actions make to the ticket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketChanges {
    pub assignee: Option<String>,
    pub group: Option<String>,
    pub tags: Vec<String>,
}

impl TicketChanges {
    pub fn is_empty(&self) -> bool {
        *self == TicketChanges::default()
    }
}

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
    pub templates: Templates,
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

#[derive(Debug, Clone, serde::Serialize)]
pub struct CommentVars {
    pub body: String,
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

/// Which triggers fire for `ctx`, rendered. Pure: no I/O.
pub fn plan(cfg: &TriggerSet, ctx: &EventContext) -> Plan {
    let mut out = Plan::default();
    for t in cfg
        .triggers
        .iter()
        .filter(|t| Some(t.on) == ctx.kind && matches(&t.conditions, ctx))
    {
        for a in &t.actions {
            match a {
                Action::Set(c) => {
                    out.changes.assignee = c.assignee.clone().or(out.changes.assignee.take());
                    out.changes.group = c.group.clone().or(out.changes.group.take());
                    out.changes.tags.extend(c.tags.iter().cloned());
                }
                Action::NotifyRequester(tpl) | Action::Notify { tpl, .. } => {
                    let to = match a {
                        Action::Notify { to, .. } => Some(to.clone()),
                        _ => ctx.requester.email.clone(),
                    };
                    match cfg.templates.render(tpl, ctx) {
                        Ok((subject, text, html)) => out.notifications.push(PlannedNotification {
                            trigger: t.name.clone(),
                            to,
                            subject,
                            text,
                            html,
                        }),
                        Err(e) => {
                            tracing::error!(trigger = %t.name, error = %e, "template failed to render")
                        }
                    }
                }
            }
        }
    }
    out.changes.tags.sort();
    out.changes.tags.dedup();
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
        && c.requester_is_new.is_none_or(|n| n == ctx.requester_is_new)
        && match (&c.organization, &ctx.organization) {
            (None, _) => true,
            (Some(OrgCondition::None), o) => o.is_none(),
            (Some(OrgCondition::Names(_)), None) => false,
            (Some(OrgCondition::Names(n)), Some(o)) => {
                n.iter().any(|x| x.eq_ignore_ascii_case(&o.name))
            }
        }
}

const CLASSES: &[&str] = &["normal", "auto_reply", "bounce", "list", "loop"];

impl TriggerSet {
    /// Parse and compile every enabled trigger; problems carry line numbers
    /// when `text` (the configuration file) is given.
    pub fn build(cfg: &Config, text: Option<&str>) -> (TriggerSet, Vec<Problem>) {
        let mut set = TriggerSet::default();
        let mut problems = Vec::new();
        for (i, t) in cfg.triggers.iter().enumerate() {
            let mut err = |key: &str, msg: String| {
                problems.push(Problem {
                    line: text.and_then(|tx| locate(tx, "triggers", i, key)),
                    key: format!("triggers[{i}].{key}"),
                    message: msg,
                })
            };
            match parse_trigger(t, &mut set.templates, i, &mut err) {
                Some(tr) if t.enabled => set.triggers.push(tr),
                _ => {}
            }
        }
        (set, problems)
    }
}

fn parse_trigger(
    t: &TriggerConfig,
    templates: &mut Templates,
    i: usize,
    err: &mut dyn FnMut(&str, String),
) -> Option<Trigger> {
    let mut ok = true;
    let on = EventKind::parse(&t.on);
    if on.is_none() {
        err(
            "on",
            format!(
                "{:?}: use ticket_created, comment_added or ticket_published",
                t.on
            ),
        );
        ok = false;
    }
    if t.name.trim().is_empty() {
        err("name", "a trigger needs a name".into());
        ok = false;
    }
    let mut c = Conditions {
        class: vec!["normal".into()],
        ..Default::default()
    };
    for (k, v) in &t.conditions {
        let list = || -> Option<Vec<String>> {
            match v {
                toml::Value::String(s) => Some(vec![s.clone()]),
                toml::Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
                _ => None,
            }
        };
        let r: Result<(), String> = match k.as_str() {
            "channel" => list().map(|l| c.channel = Some(l)).ok_or_else(|| "must be a list of channel names".into()),
            "status" => match list() {
                Some(l) if l.iter().all(|s| crate::thread::STATUSES.contains(&s.as_str())) => {
                    c.status = Some(l);
                    Ok(())
                }
                _ => Err(format!("must be a list of statuses ({})", crate::thread::STATUSES.join(", "))),
            },
            "class" => match list() {
                Some(l) if l.iter().all(|s| CLASSES.contains(&s.as_str())) => {
                    c.class = l;
                    Ok(())
                }
                _ => Err(format!("must be a list of message classes ({})", CLASSES.join(", "))),
            },
            "organization" => match (v.as_str(), list()) {
                (Some("none"), _) => {
                    c.organization = Some(OrgCondition::None);
                    Ok(())
                }
                (_, Some(l)) => {
                    c.organization = Some(OrgCondition::Names(l));
                    Ok(())
                }
                _ => Err("must be a list of organization names or \"none\"".into()),
            },
            "requester_is_new" => v.as_bool().map(|b| c.requester_is_new = Some(b)).ok_or_else(|| "must be true or false".into()),
            other => Err(format!("unknown condition {other:?}: use channel, organization, requester_is_new, status or class")),
        };
        if let Err(e) = r {
            err("conditions", format!("{k}: {e}"));
            ok = false;
        }
    }
    let mut actions = Vec::new();
    if t.actions.is_empty() {
        err("actions", "a trigger needs at least one action".into());
        ok = false;
    }
    for (j, a) in t.actions.iter().enumerate() {
        match parse_action(a, templates, &format!("t{i}a{j}")) {
            Ok(a) => actions.push(a),
            Err(e) => {
                err("actions", format!("action {}: {e}", j + 1));
                ok = false;
            }
        }
    }
    ok.then(|| Trigger {
        name: t.name.clone(),
        on: on.unwrap_or(EventKind::TicketCreated),
        conditions: c,
        actions,
    })
}

fn parse_action(a: &toml::Table, templates: &mut Templates, id: &str) -> Result<Action, String> {
    let s = |k: &str| -> Result<Option<String>, String> {
        match a.get(k) {
            None => Ok(None),
            Some(toml::Value::String(v)) => Ok(Some(v.clone())),
            Some(_) => Err(format!("{k} must be a string")),
        }
    };
    let only = |allowed: &[&str]| -> Result<(), String> {
        match a.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(format!("unknown key {k:?}: use {}", allowed.join(", "))),
            None => Ok(()),
        }
    };
    const TPL: &[&str] = &[
        "type",
        "to",
        "subject",
        "template",
        "template_file",
        "html_template",
        "html_template_file",
    ];
    let kind = s("type")?.ok_or("needs type = \"notify_requester\", \"notify\" or \"set\"")?;
    match kind.as_str() {
        "notify_requester" | "notify" => {
            only(TPL)?;
            let tpl = templates.add(
                id,
                s("subject")?,
                s("template")?,
                s("template_file")?,
                s("html_template")?,
                s("html_template_file")?,
            )?;
            if kind == "notify" {
                let to = s("to")?.ok_or("notify needs to = \"address\"")?;
                let to =
                    crate::identity::EmailAddress::parse(&to).map_err(|e| format!("to: {e}"))?;
                Ok(Action::Notify {
                    to: to.as_str().to_string(),
                    tpl,
                })
            } else if a.contains_key("to") {
                Err(
                    "notify_requester sends to the requester: remove to, or use type = \"notify\""
                        .into(),
                )
            } else {
                Ok(Action::NotifyRequester(tpl))
            }
        }
        "set" => {
            only(&["type", "assignee", "group", "tag"])?;
            let ch = TicketChanges {
                assignee: s("assignee")?,
                group: s("group")?,
                tags: s("tag")?.into_iter().collect(),
            };
            if ch
                .tags
                .iter()
                .any(|t| t.trim().is_empty() || t.contains(char::is_whitespace))
            {
                return Err("tag must be one word".into());
            }
            if ch.is_empty() {
                return Err("set needs assignee, group or tag".into());
            }
            Ok(Action::Set(ch))
        }
        other => Err(format!(
            "unknown type {other:?}: use notify_requester, notify or set"
        )),
    }
}
