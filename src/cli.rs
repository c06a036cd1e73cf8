//! The `intake` command line: arguments in, a library call and an exit code out.
//!
//! Exit codes follow sysexits: 0 success, 1 a reported failure (bad config,
//! refused operation), 2 bad arguments (clap), 75 temporary failure (database
//! unavailable: an MTA keeps the message and retries).

mod agents;
mod connect;
mod files;
mod import;
mod lifecycle;
mod quarantine;
mod review;
mod status;

pub use crate::app::EX_TEMPFAIL;
use crate::app::{load_config, App};
use crate::config::{Config, Secrets, DEFAULT_PATH};
use crate::identity::ContactPoint;
use crate::model::{Inbound, RawMail};
use crate::store::StoreError;
use clap::{Parser, Subcommand};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "intake", version, about = "Help-desk ingestion daemon")]
pub struct Cli {
    /// Configuration file.
    #[arg(long, global = true, default_value = DEFAULT_PATH)]
    pub config: PathBuf,
    /// Log format: human or json (overrides the config).
    #[arg(long, global = true, value_parser = ["human", "json"])]
    pub log_format: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate the configuration file: prints `ok` or every problem
    /// (`--connect`: also connect to the database, log in to every mailbox
    /// and the SMTP server, and say which work).
    CheckConfig {
        #[arg(long)]
        connect: bool,
    },
    /// Apply database migrations.
    Migrate,
    /// Run the daemon: IMAP workers and the HTTP server (`--once`: drain
    /// every mailbox once and exit, 1 if one failed).
    Run {
        #[arg(long)]
        once: bool,
    },
    /// Ingest one message from FILE or standard input (MTA pipe).
    Ingest {
        /// Mailbox name recorded with the message.
        #[arg(long)]
        mailbox: Option<String>,
        file: Option<PathBuf>,
    },
    /// Import an mbox file or a Maildir folder through the pipeline
    /// (exactly once: importing it again stores nothing new).
    #[command(group(clap::ArgGroup::new("archive").required(true)))]
    Import {
        /// An mbox file.
        #[arg(long, group = "archive")]
        mbox: Option<PathBuf>,
        /// A Maildir folder (its `cur/` and `new/`).
        #[arg(long, group = "archive")]
        maildir: Option<PathBuf>,
        /// Mailbox name recorded with the messages.
        #[arg(long)]
        mailbox: Option<String>,
    },
    /// Print everything as one JSON document, streamed (or only the
    /// tickets the filters select, with the users and organizations they name).
    Export {
        /// Tickets with a message at or after this time (RFC 3339 date or
        /// date-time, e.g. 2026-11-30 or 2026-11-30T08:00:00Z).
        #[arg(long, value_parser = parse_since)]
        since: Option<i64>,
        /// Only this ticket (repeatable).
        #[arg(long = "ticket")]
        tickets: Vec<i64>,
        /// Tickets this user requested or wrote on.
        #[arg(long)]
        user: Option<i64>,
    },
    /// What ops look at first: every mailbox as the running daemon reports
    /// it, the outbox, the quarantine.
    Status,
    /// End users.
    #[command(subcommand)]
    Users(UsersCmd),
    /// Organizations.
    #[command(subcommand)]
    Orgs(OrgsCmd),
    /// Tickets.
    #[command(subcommand)]
    Tickets(TicketsCmd),
    /// Messages that could not be processed.
    #[command(subcommand)]
    Quarantine(quarantine::QuarantineCmd),
    /// Mail held because it may not act as its From address (`[trust]`).
    #[command(subcommand)]
    Review(review::ReviewCmd),
    /// The desk's agents.
    #[command(subcommand)]
    Agents(agents::AgentsCmd),
    /// A comment's raw mail.
    #[command(subcommand)]
    Comments(files::CommentsCmd),
    /// An attachment's body.
    #[command(subcommand)]
    Attachments(files::AttachmentsCmd),
    /// The blob store: raw mails and attachment bodies.
    #[command(subcommand)]
    Blobs(lifecycle::BlobsCmd),
    /// Retention by policy (`[retention]`).
    #[command(subcommand)]
    Retention(lifecycle::RetentionCmd),
}

#[derive(Subcommand, Debug)]
pub enum UsersCmd {
    /// Merge LOSER into WINNER.
    Merge { loser: i64, winner: i64 },
    /// Show the user holding a contact point (email, phone or network:handle).
    Lookup { contact: String },
    /// Erase a user's personal data on request (GDPR Art. 17): USER is a
    /// user id or a contact point they hold. Tickets and other people's
    /// comments stay; the requester shows as an erased user.
    Erase { user: String },
}

#[derive(Subcommand, Debug)]
pub enum OrgsCmd {
    /// Give DOMAIN to organization ORG (users of that domain without one join it).
    AddDomain { org: i64, domain: String },
    /// Create an organization owning the given domains.
    Create { name: String, domains: Vec<String> },
}

#[derive(Subcommand, Debug)]
pub enum TicketsCmd {
    /// Make a private ticket public (its deferred events fire).
    Publish { id: i64 },
    /// Make a public ticket private (only while it has one public comment).
    MakePrivate { id: i64 },
    /// Set a ticket's status (new, open, pending, solved, closed).
    Status { id: i64, status: String },
}

/// Entry point used by the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::CheckConfig { connect } = cli.command {
        return check_config(&cli.config, connect);
    }
    let is_ingest = matches!(cli.command, Command::Ingest { .. });
    // Only the daemon uses the secrets: other commands run from a shell
    // where they are not set.
    let secrets = match cli.command {
        Command::Run { .. } => Secrets::Read,
        _ => Secrets::Skip,
    };
    let cfg = match load_config(&cli.config, secrets) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("intake: configuration {}:\n{e}", cli.config.display());
            return if is_ingest {
                ExitCode::from(EX_TEMPFAIL)
            } else {
                ExitCode::from(1)
            };
        }
    };
    crate::telemetry::init_tracing(&cfg, cli.log_format.as_deref());
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("intake: cannot start runtime: {e}");
            return ExitCode::from(EX_TEMPFAIL);
        }
    };
    rt.block_on(dispatch(cli, cfg))
}

fn check_config(path: &std::path::Path, connect: bool) -> ExitCode {
    match load_config(path, Secrets::Read) {
        Ok(cfg) if connect => connect::report(&cfg),
        Ok(cfg) => {
            out("ok");
            if cfg.trust.authserv_ids.is_empty() {
                eprintln!("note: [trust] authserv_ids is not set: senders are not verified (the From header is believed)");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            for p in &e.problems {
                out(&format!("{}: {p}", path.display()));
            }
            ExitCode::from(1)
        }
    }
}

fn fail(e: StoreError) -> ExitCode {
    eprintln!("intake: {e}");
    if e.is_transient() {
        ExitCode::from(EX_TEMPFAIL)
    } else {
        ExitCode::from(1)
    }
}

fn print_json(v: &impl serde::Serialize) {
    out(&serde_json::to_string(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")));
}

/// Status of a command whose reader went away (`intake export | head`):
/// what a shell reports for a program ended by SIGPIPE.
const EXIT_PIPE: i32 = 128 + 13;

/// `--since`: an RFC 3339 date (midnight UTC) or date-time, in ms since the epoch.
fn parse_since(s: &str) -> Result<i64, String> {
    use time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::parse(s, &Rfc3339)
        .or_else(|_| time::OffsetDateTime::parse(&format!("{s}T00:00:00Z"), &Rfc3339))
        .map_err(|_| {
            format!(
                "{s:?} is not an RFC 3339 date (2026-11-30) or date-time (2026-11-30T08:00:00Z)"
            )
        })?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Standard output could not be written: a closed pipe ends the command
/// quietly (as SIGPIPE ends other tools), anything else with status 1.
fn write_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(EXIT_PIPE);
    }
    eprintln!("intake: cannot write to standard output: {e}");
    std::process::exit(1);
}

/// One line on standard output. A closed pipe ends the command quietly
/// (as SIGPIPE ends other tools), never with a panic.
fn out(line: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    if let Err(e) = writeln!(o, "{line}").and_then(|()| o.flush()) {
        write_failed(e)
    }
}

async fn dispatch(cli: Cli, cfg: Config) -> ExitCode {
    if let Command::Run { once } = cli.command {
        return ExitCode::from(crate::daemon::run(cfg, once).await);
    }
    if let Command::Ingest { mailbox, file } = &cli.command {
        // Read the message before touching the database, so a failure later
        // still leaves the MTA holding it (exit 75).
        let mut raw = Vec::new();
        let read = match file {
            Some(f) => std::fs::read(f).map(|b| raw = b),
            None => std::io::stdin().read_to_end(&mut raw).map(|_| ()),
        };
        if let Err(e) = read {
            eprintln!("intake: cannot read message: {e}");
            return ExitCode::from(EX_TEMPFAIL);
        }
        let p = match App::build(cfg).await {
            Ok(a) => a.pipeline,
            Err(e) => {
                eprintln!("intake: {e}");
                return ExitCode::from(EX_TEMPFAIL);
            }
        };
        let item = Inbound::Mail(RawMail {
            raw,
            mailbox: mailbox.clone(),
            source: "pipe".into(),
        });
        return match p.ingest(vec![item], None).await {
            Ok(o) => {
                print_json(&o[0]);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("intake: {e}");
                ExitCode::from(EX_TEMPFAIL)
            }
        };
    }
    let app = match App::build(cfg).await {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let (cfg, p, store) = (&app.config, &app.pipeline, app.store());
    let res: Result<(), StoreError> = async {
        match cli.command {
            Command::CheckConfig { .. } | Command::Ingest { .. } => unreachable!("handled above"),
            Command::Import { mbox, maildir, mailbox } => {
                let archive = match (mbox, maildir) {
                    (Some(f), _) => crate::sources::archive::Archive::Mbox(f),
                    (None, Some(d)) => crate::sources::archive::Archive::Maildir(d),
                    (None, None) => unreachable!("clap requires one"),
                };
                let (summary, secs) = import::run(p, &archive, mailbox)
                    .await
                    .map_err(|e| StoreError::invalid(format!("import: {e}")))?;
                out(&summary.line(secs))
            }
            Command::Migrate => lifecycle::migrate(store).await?,
            Command::Blobs(cmd) => lifecycle::blobs(cmd, store, cfg).await?,
            Command::Retention(cmd) => lifecycle::retention(cmd, store, cfg).await?,
            Command::Run { .. } => {} // handled before the store is opened
            Command::Status => {
                for line in status::report(cfg, store).await? {
                    out(&line);
                }
            }
            Command::Export { since, tickets, user } => {
                let filter = crate::store::ExportFilter { since_ms: since, tickets, user };
                let mut w = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
                match store.export_to(&mut w, &filter).await {
                    Ok(()) => {}
                    Err(crate::store::ExportError::Store(e)) => return Err(e),
                    Err(crate::store::ExportError::Write(e)) => write_failed(e),
                }
            }
            Command::Users(UsersCmd::Merge { loser, winner }) => print_json(&store.merge_users(loser, winner).await?),
            Command::Users(UsersCmd::Erase { user }) => {
                let id = match user.parse::<i64>() {
                    Ok(id) => id,
                    Err(_) => {
                        let c = ContactPoint::parse_any(&user, &cfg.identities.default_phone_region)
                            .map_err(|e| StoreError::invalid(format!("{user:?} is neither a user id nor a contact point: {e}")))?;
                        store.user_by_contact(&c).await?.ok_or_else(|| StoreError::not_found(format!("contact {}", c.value())))?.id
                    }
                };
                print_json(&store.erase_user(id).await?)
            }
            Command::Users(UsersCmd::Lookup { contact }) => {
                let c = ContactPoint::parse_any(&contact, &cfg.identities.default_phone_region)
                    .map_err(|e| StoreError::invalid(e.to_string()))?;
                let u = store.user_by_contact(&c).await?.ok_or_else(|| StoreError::not_found(format!("contact {}", c.value())))?;
                print_json(&u)
            }
            Command::Orgs(OrgsCmd::AddDomain { org, domain }) => {
                let moved = p.add_domain(org, &domain).await?;
                print_json(&serde_json::json!({"organization_id": org, "domain": domain, "users_moved": moved}))
            }
            Command::Orgs(OrgsCmd::Create { name, domains }) => {
                let id = p.create_organization(&name, &domains).await?;
                print_json(&serde_json::json!({"organization_id": id}))
            }
            Command::Tickets(TicketsCmd::Publish { id }) => {
                // Publishing fires the events the ticket skipped while private.
                p.set_ticket_public(id, true).await?
            }
            Command::Tickets(TicketsCmd::MakePrivate { id }) => store.set_ticket_public(id, false).await?,
            Command::Tickets(TicketsCmd::Status { id, status }) => store.set_ticket_status(id, &status).await?,
            Command::Quarantine(cmd) => quarantine::run(cmd, p).await?,
            Command::Review(cmd) => review::run(cmd, p).await?,
            Command::Agents(cmd) => agents::run(cmd, cfg, store).await?,
            Command::Comments(cmd) => files::comments(cmd, store).await?,
            Command::Attachments(cmd) => files::attachments(cmd, store).await?,
        }
        Ok(())
    }
    .await;
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
