//! Trigger configuration: `[[triggers]]` tables parsed into typed triggers
//! with their templates compiled, problems reported with their line.

use super::render::Templates;
use super::triggers::*;
use crate::config::{locate, Config, Problem, TriggerConfig};

const CLASSES: &[&str] = &["normal", "auto_reply", "bounce", "list", "loop"];

impl TriggerSet {
    /// Parse and compile every trigger (disabled ones are kept aside: their
    /// queued notifications are still rendered); problems carry line numbers
    /// when `text` (the configuration file) is given. Names must be unique:
    /// the outbox refers to a template by trigger name and action index.
    pub fn build(cfg: &Config, text: Option<&str>) -> (TriggerSet, Vec<Problem>) {
        let mut set = TriggerSet::default();
        let mut problems = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (i, t) in cfg.triggers.iter().enumerate() {
            let mut err = |key: &str, msg: String| {
                problems.push(Problem {
                    line: text.and_then(|tx| locate(tx, "triggers", i, key)),
                    key: format!("triggers[{i}].{key}"),
                    message: msg,
                })
            };
            if !names.insert(t.name.as_str()) {
                err(
                    "name",
                    format!("{:?}: another trigger has this name", t.name),
                );
                continue;
            }
            match parse_trigger(t, &mut set.templates, i, &mut err) {
                Some(tr) if t.enabled => set.triggers.push(tr),
                Some(tr) => set.disabled.push(tr),
                None => {}
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
                Some(l) if l.iter().all(|s| crate::model::TicketStatus::parse(s).is_some()) => {
                    c.status = Some(l);
                    Ok(())
                }
                _ => Err(format!("must be a list of statuses ({})", crate::model::TicketStatus::names())),
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
            "author_role" => match list() {
                Some(l) if !l.is_empty() && l.iter().all(|r| matches!(r.as_str(), "agent" | "end_user")) => {
                    c.author_role = Some(l);
                    Ok(())
                }
                _ => Err("must be \"agent\" or \"end_user\" (or a list of them)".into()),
            },
            "forwarded_by_agent" => v.as_bool().map(|b| c.forwarded_by_agent = Some(b)).ok_or_else(|| "must be true or false".into()),
            "requester_is_new" => v.as_bool().map(|b| c.requester_is_new = Some(b)).ok_or_else(|| "must be true or false".into()),
            other => Err(format!("unknown condition {other:?}: use author_role, channel, forwarded_by_agent, organization, requester_is_new, status or class")),
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
