//! `intake agents`: the desk's agents, configured (`[agents]`) and added.

use super::{out, print_json};
use crate::config::Config;
use crate::identity::EmailAddress;
use crate::store::{Store, StoreError};
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum AgentsCmd {
    /// The configured addresses and domains, then the added agents.
    List,
    /// Make ADDRESS an agent (its user leaves any organization).
    Add { address: String },
    /// Make ADDRESS an end user again (only an added agent).
    Remove { address: String },
}

pub async fn run(cmd: AgentsCmd, cfg: &Config, store: &Store) -> Result<(), StoreError> {
    let parse =
        |a: &str| EmailAddress::parse(a).map_err(|e| StoreError::invalid(format!("address: {e}")));
    match cmd {
        AgentsCmd::List => {
            for a in &cfg.agents.addresses {
                out(&format!("configured address {a}"));
            }
            for d in &cfg.agents.domains {
                out(&format!("configured domain {d}"));
            }
            for a in store.agents().await? {
                print_json(&a);
            }
        }
        AgentsCmd::Add { address } => {
            let a = parse(&address)?;
            let user = store.agent_set(&a, true).await?;
            out(&format!("{a} is an agent (user {user})"));
        }
        AgentsCmd::Remove { address } => {
            let a = parse(&address)?;
            let user = store.agent_set(&a, false).await?;
            out(&format!("{a} is an end user again (user {user})"));
        }
    }
    Ok(())
}
