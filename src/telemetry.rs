//! Logging: tracing to standard error, human on a terminal or JSON.

use crate::config::Config;

/// Install the global subscriber. `RUST_LOG` overrides the configured level.
pub fn init_tracing(cfg: &Config, format_override: Option<&str>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.logging.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: journald and files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let res = match format_override.unwrap_or(&cfg.logging.format) {
        "json" => builder.json().flatten_event(true).try_init(),
        _ => builder.try_init(),
    };
    // A second initialisation (tests) keeps the first subscriber.
    drop(res);
}
