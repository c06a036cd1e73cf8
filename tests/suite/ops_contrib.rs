//! `contrib/`: the Prometheus alert rules pass `promtool check rules` and
//! their unit tests (`promtool test rules`, each alert both firing and not),
//! every rule has `for:`, a severity and its summary, description and
//! runbook, and every metric the Grafana dashboard and the alert rules query
//! is one intake exports: the names are read from the `counter!`, `gauge!`
//! and `histogram!` calls and the `"intake_..."` string constants under
//! `src/`, with the `_bucket`, `_sum` and `_count` series a histogram adds.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const ALERTS: &str = "contrib/prometheus/alerts.yml";
const ALERT_TESTS: &str = "contrib/prometheus/alerts_test.yml";
const DASHBOARD: &str = "contrib/grafana/intake.json";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Run promtool; its success and everything it printed.
fn promtool(args: &[&str], file: &Path) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .arg(file)
        .current_dir(root())
        .output()
        .expect("promtool is required (scripts/setup-test-deps.sh installs Debian's prometheus package)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn alert_rules_pass_promtool_check() {
    let (ok, out) = promtool(&["check", "rules"], &root().join(ALERTS));
    assert!(ok, "promtool check rules {ALERTS} failed:\n{out}");
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    let (ok, out) = promtool(&["test", "rules"], &root().join(ALERT_TESTS));
    assert!(ok, "promtool test rules {ALERT_TESTS} failed:\n{out}");
}

/// The alert names of `alerts.yml`, each with the text of its rule.
fn alert_rules(text: &str) -> Vec<(String, String)> {
    let mut rules: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(name) = t.strip_prefix("- alert:") {
            rules.push((name.trim().to_string(), String::new()));
        } else if t.starts_with("- record:") || t.starts_with("- name:") {
            rules.push((String::new(), String::new()));
        } else if let Some((_, body)) = rules.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    rules.retain(|(name, _)| !name.is_empty());
    rules
}

#[test]
fn every_alert_has_for_severity_runbook_and_both_kinds_of_unit_test() {
    let rules = alert_rules(&read(ALERTS));
    assert!(
        rules.len() >= 7,
        "{ALERTS}: expected the seven alerts of issue 16, found {rules:?}"
    );
    // (alert, a case where it fires, a case where it must not).
    let tests = read(ALERT_TESTS);
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    let mut cases: Vec<(String, bool)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(name) = line.strip_prefix("alertname:") {
            let next = lines[i + 1..]
                .iter()
                .find(|l| l.starts_with("exp_alerts:"))
                .unwrap_or_else(|| panic!("{ALERT_TESTS}: no exp_alerts after alertname {name}"));
            let fires = next.trim_start_matches("exp_alerts:").trim() != "[]";
            cases.push((name.trim().to_string(), fires));
        }
    }
    for (name, body) in &rules {
        for key in ["for:", "severity:", "summary:", "description:", "runbook:"] {
            assert!(
                body.lines().any(|l| l.trim_start().starts_with(key)),
                "{ALERTS}: alert {name} has no {key}"
            );
        }
        for fires in [true, false] {
            assert!(
                cases.iter().any(|(n, f)| n == name && *f == fires),
                "{ALERT_TESTS}: alert {name} has no case where it {}",
                if fires { "fires" } else { "must not fire" }
            );
        }
    }
}

// ---------------------------------------------------------------- exported names

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The string literal starting at `s` (after optional whitespace), if any.
fn literal_at(s: &str) -> Option<&str> {
    let s = s.trim_start().strip_prefix('"')?;
    s.find('"').map(|end| &s[..end])
}

/// The identifier starting at `s` (after optional whitespace).
fn ident_at(s: &str) -> &str {
    let s = s.trim_start();
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

fn is_metric_name(s: &str) -> bool {
    s.starts_with("intake_")
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The names of every series intake's `/metrics` can show, as rendered by
/// metrics-exporter-prometheus (no suffix added to counters; a histogram is
/// `_bucket`/`_sum`/`_count` when buckets are configured for it, else a
/// summary: the name itself with quantiles, `_sum` and `_count`).
fn exported_names() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    files.sort();
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
        .collect();
    let all = texts.join("\n");
    assert!(
        !all.contains("set_enable_unit_suffix(true)"),
        "unit suffixes are enabled: teach this test the names they produce"
    );

    // `const NAME: &str = "intake_..."`, for macros given a constant.
    let constant = |ident: &str| -> Option<String> {
        let pat = format!("const {ident}: &str =");
        let at = all.find(&pat)?;
        literal_at(&all[at + pat.len()..]).map(str::to_string)
    };

    let mut plain = BTreeSet::new();
    let mut histograms = BTreeSet::new();
    for text in &texts {
        for (mac, is_histogram) in [
            ("counter!(", false),
            ("gauge!(", false),
            ("histogram!(", true),
        ] {
            for (at, _) in text.match_indices(mac) {
                let rest = &text[at + mac.len()..];
                let name = match literal_at(rest) {
                    Some(l) => Some(l.to_string()),
                    None => constant(ident_at(rest)),
                };
                // A name in a variable: its literals are collected below.
                if let Some(name) = name {
                    if is_histogram {
                        histograms.insert(name);
                    } else {
                        plain.insert(name);
                    }
                }
            }
        }
        // Names chosen at run time (e.g. `let name = match ... { .. => "intake_..." }`).
        for (at, _) in text.match_indices("\"intake_") {
            if let Some(l) = literal_at(&text[at..]) {
                if is_metric_name(l) {
                    plain.insert(l.to_string());
                }
            }
        }
    }

    // Which histograms have buckets: `set_buckets` (all of them) or
    // `set_buckets_for_metric(Matcher::Full|Prefix|Suffix("..."))`.
    let matcher = |kind: &str| -> Vec<String> {
        let pat = format!("Matcher::{kind}(");
        all.match_indices(&pat)
            .filter_map(|(at, _)| literal_at(&all[at + pat.len()..]).map(str::to_string))
            .collect()
    };
    let (full, prefix, suffix) = (matcher("Full"), matcher("Prefix"), matcher("Suffix"));
    let all_bucketed = all.contains(".set_buckets(");

    let mut names = BTreeSet::new();
    for h in &histograms {
        plain.remove(h);
        let bucketed = all_bucketed
            || full.contains(h)
            || prefix.iter().any(|p| h.starts_with(p.as_str()))
            || suffix.iter().any(|s| h.ends_with(s.as_str()));
        names.insert(format!("{h}_sum"));
        names.insert(format!("{h}_count"));
        names.insert(if bucketed {
            format!("{h}_bucket")
        } else {
            h.clone()
        });
    }
    names.extend(plain);
    assert!(
        names.contains("intake_database_writable") && names.contains("intake_mailbox_up"),
        "the scan of src/ found too little: {names:?}"
    );
    names
}

#[test]
fn exported_names_are_read_as_the_exporter_renders_them() {
    let names = exported_names();
    for want in [
        "intake_messages_stored_total",
        "intake_messages_quarantined_total",
        "intake_database_errors_total",
        "intake_mailbox_lag_messages",
        "intake_ingest_latency_seconds_bucket",
        "intake_ingest_latency_seconds_sum",
        "intake_ingest_latency_seconds_count",
    ] {
        assert!(names.contains(want), "{want} not among {names:?}");
    }
    assert!(
        !names.contains("intake_ingest_latency_seconds"),
        "a histogram with buckets has no series of its bare name"
    );
}

// ---------------------------------------------------------------- PromQL

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

/// The index just after the string literal opening at `i`.
fn skip_string(b: &[u8], i: usize) -> usize {
    let quote = b[i];
    let mut j = i + 1;
    while j < b.len() && b[j] != quote {
        if b[j] == b'\\' && quote != b'`' {
            j += 1;
        }
        j += 1;
    }
    j + 1
}

/// The index just after the `close` that ends the group opening at `i`
/// (strings inside are skipped).
fn skip_group(b: &[u8], i: usize, close: u8) -> usize {
    let mut j = i + 1;
    while j < b.len() && b[j] != close {
        if matches!(b[j], b'"' | b'\'' | b'`') {
            j = skip_string(b, j);
        } else {
            j += 1;
        }
    }
    j + 1
}

/// The metric names a PromQL expression selects: its identifiers that are
/// not functions, aggregations, keywords or label names, and not inside
/// strings, label matchers, ranges or Grafana variables (`$mailbox`,
/// `$__rate_interval`, `${x}`).
fn metric_names(expr: &str) -> Vec<String> {
    const AGGREGATIONS: [&str; 14] = [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const KEYWORDS: [&str; 8] = [
        "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
    ];
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let b = expr.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if matches!(c, b'"' | b'\'' | b'`') {
            i = skip_string(b, i);
        } else if c == b'{' {
            i = skip_group(b, i, b'}');
        } else if c == b'[' {
            i = skip_group(b, i, b']');
        } else if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'$' {
            i += 1;
            if i < b.len() && b[i] == b'{' {
                i = skip_group(b, i, b'}');
            } else {
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit() || c == b'.' {
            // Numbers, durations, 1e3, 0x1f.
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
                i += 1;
            }
        } else if is_ident_start(c) {
            let start = i;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            let word = expr[start..i].to_ascii_lowercase();
            let mut j = i;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            let call = j < b.len() && b[j] == b'(';
            if LABEL_LISTS.contains(&word.as_str()) {
                if call {
                    i = skip_group(b, j, b')');
                }
            } else if !(call
                || AGGREGATIONS.contains(&word.as_str())
                || KEYWORDS.contains(&word.as_str()))
            {
                names.push(expr[start..i].to_string());
            }
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn promql_metric_names_are_found_and_nothing_else() {
    let got = metric_names(
        r#"histogram_quantile(0.95, sum by (le, mailbox) (rate(a_bucket{mailbox=~"$mailbox", x="}"}[$__rate_interval])))
           / on (job) group_left (le) max without (instance) (b offset 5m) > bool 2e3
           unless sum(c{k="v"}[1h:1m]) by (job) or time() - d:rec @ 1609746000 and ${var} < inf"#,
    );
    assert_eq!(got, ["a_bucket", "b", "c", "d:rec"]);
}

/// The expression of every rule in `alerts.yml` (one line, or a `|` block).
fn alert_exprs(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut exprs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if rest.starts_with('|') || rest.starts_with('>') {
            let block: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || indent(l) > indent(line))
                .map(|l| l.trim())
                .collect();
            exprs.push(block.join("\n"));
        } else {
            let unquoted = rest
                .strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .or_else(|| rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
                .unwrap_or(rest);
            exprs.push(unquoted.to_string());
        }
    }
    exprs
}

/// Every panel's targets (rows' nested panels included) and the template
/// variables' queries; `label_values(metric, label)` gives its selector.
fn dashboard_exprs(dash: &Value) -> Vec<String> {
    fn panels(list: &Value, out: &mut Vec<String>) {
        for p in list.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push(e.to_string());
                }
            }
            panels(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dash["panels"], &mut out);
    for var in dash["templating"]["list"].as_array().into_iter().flatten() {
        if var["type"] != "query" {
            continue;
        }
        let q = var["query"]["query"]
            .as_str()
            .or_else(|| var["query"].as_str())
            .unwrap_or_default()
            .trim();
        if let Some(args) = q
            .strip_prefix("label_values(")
            .and_then(|a| a.strip_suffix(')'))
        {
            if let Some((selector, _label)) = args.rsplit_once(',') {
                out.push(selector.to_string());
            }
        } else if let Some(e) = q
            .strip_prefix("query_result(")
            .and_then(|a| a.strip_suffix(')'))
        {
            out.push(e.to_string());
        } else if !q.is_empty() {
            out.push(q.to_string());
        }
    }
    out
}

/// Every metric name in `exprs` that intake does not export.
fn unknown_metrics(exprs: &[String], exported: &BTreeSet<String>) -> Vec<String> {
    let mut unknown: Vec<String> = exprs
        .iter()
        .flat_map(|e| {
            metric_names(e)
                .into_iter()
                .map(move |n| format!("{n}  (in: {e})"))
        })
        .filter(|n| !exported.contains(n.split_whitespace().next().unwrap_or_default()))
        .collect();
    unknown.dedup();
    unknown
}

#[test]
fn alert_rules_query_only_exported_metrics() {
    let exprs = alert_exprs(&read(ALERTS));
    assert!(
        exprs.len() >= 6,
        "{ALERTS}: expected an expression per alert, got {exprs:?}"
    );
    let unknown = unknown_metrics(&exprs, &exported_names());
    assert!(
        unknown.is_empty(),
        "{ALERTS} queries metrics intake does not export (src/):\n{}",
        unknown.join("\n")
    );
}

fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD)).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"))
}

#[test]
fn dashboard_queries_only_exported_metrics() {
    let dash = dashboard();
    let exprs = dashboard_exprs(&dash);
    assert!(exprs.len() >= 10, "{DASHBOARD}: too few queries: {exprs:?}");
    let unknown = unknown_metrics(&exprs, &exported_names());
    assert!(
        unknown.is_empty(),
        "{DASHBOARD} queries metrics intake does not export (src/):\n{}",
        unknown.join("\n")
    );
}

#[test]
fn dashboard_is_importable_with_a_prometheus_input_and_a_mailbox_variable() {
    let dash = dashboard();
    assert!(
        dash["__inputs"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"),
        "{DASHBOARD}: no DS_PROMETHEUS datasource input"
    );
    assert!(
        dash["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|v| v["name"] == "mailbox"),
        "{DASHBOARD}: no mailbox variable"
    );
    assert!(dash["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    let mut ids = BTreeSet::new();
    let mut rows = vec![&dash["panels"]];
    while let Some(list) = rows.pop() {
        for p in list.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or_default();
            assert!(
                !title.is_empty(),
                "{DASHBOARD}: a panel without a title: {p}"
            );
            let id = p["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{DASHBOARD}: {title}: no id"));
            assert!(ids.insert(id), "{DASHBOARD}: panel id {id} used twice");
            if p["type"] == "row" {
                rows.push(&p["panels"]);
                continue;
            }
            assert_eq!(
                p["datasource"]["uid"], "${DS_PROMETHEUS}",
                "{DASHBOARD}: {title}: not on the DS_PROMETHEUS input"
            );
            assert!(
                p["targets"].as_array().is_some_and(|t| !t.is_empty()),
                "{DASHBOARD}: {title}: no query"
            );
        }
    }
}

/// Grafana's variables replaced by values PromQL accepts: intervals by a
/// duration, anything else (used in regex matchers) by `.*`.
fn without_grafana_variables(expr: &str) -> String {
    let mut e = expr.to_string();
    for v in ["$__rate_interval", "$__interval", "$__range"] {
        e = e.replace(v, "5m");
    }
    let mut out = String::new();
    let mut rest = e.as_str();
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let skip = if let Some(braced) = after.strip_prefix('{') {
            braced.find('}').map_or(after.len(), |end| end + 2)
        } else {
            after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len())
        };
        out.push_str(".*");
        rest = &after[skip..];
    }
    out.push_str(rest);
    out
}

#[test]
fn dashboard_queries_are_valid_promql() {
    let exprs = dashboard_exprs(&dashboard());
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        let e = serde_json::to_string(&without_grafana_variables(e)).expect("a string");
        rules.push_str(&format!(
            "      - record: dashboard_query_{i}\n        expr: {e}\n"
        ));
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("dashboard_rules.yml");
    std::fs::write(&file, &rules).expect("rules written");
    let (ok, out) = promtool(&["check", "rules"], &file);
    assert!(
        ok,
        "{DASHBOARD}: a query PromQL does not parse:\n{out}\n{rules}"
    );
}
