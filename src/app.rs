//! The application, built once: the configuration (validated together with
//! its triggers), the store, and the pipeline's settings with the compiled
//! triggers, shared by every source, the HTTP server and the notification
//! sender. `intake run` and every CLI command start here.

use crate::config::{Config, ConfigError, Problem, Secrets};
use crate::notify::{NotifyError, Sender};
use crate::pipeline::{Pipeline, Settings};
use crate::store::{Store, StoreError};
use std::path::Path;
use std::sync::Arc;

/// sysexits EX_TEMPFAIL: the MTA (or cron) should try again later.
pub const EX_TEMPFAIL: u8 = 75;

/// Read and validate the configuration file, triggers included, reading
/// the secrets or only checking that each is configured.
pub fn load_config(path: &Path, secrets: Secrets) -> Result<Config, ConfigError> {
    Config::load_with(path, &crate::notify::validate, secrets)
}

/// Parse and validate configuration text, triggers included.
pub fn config_from_toml(text: &str) -> Result<Config, Vec<Problem>> {
    Config::from_toml_with(text, &crate::notify::validate)
}

/// Everything a running intake shares; cheap to clone.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub pipeline: Pipeline,
}

impl App {
    /// Open (and migrate) the database and build the settings.
    pub async fn build(config: Config) -> Result<App, StoreError> {
        let blobs = config
            .blobs
            .settings()
            .map_err(|e| StoreError::invalid(format!("[blobs]: {e}")))?;
        let store = Store::open_with(
            &config.database.url,
            config.database.max_connections,
            &blobs,
        )
        .await?;
        Ok(App::with_store(config, store))
    }

    /// The same over a store that is already open.
    pub fn with_store(config: Config, store: Store) -> App {
        let settings = Settings::from_config(&config);
        App {
            config: Arc::new(config),
            pipeline: Pipeline::new(store, settings),
        }
    }

    pub fn store(&self) -> &Store {
        &self.pipeline.store
    }

    /// The notification sender, over the pipeline's compiled triggers (an
    /// error when `[smtp]` is missing or wrong).
    pub fn sender(&self) -> Result<Sender, NotifyError> {
        Sender::with_settings(
            self.store().clone(),
            &self.config,
            self.pipeline.settings.notify.clone(),
        )
    }
}
