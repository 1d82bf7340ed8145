//! STUB: connection and pipelined scrape.
use std::sync::Arc;

use tokio::time::Instant;

use super::RedisSettings;
use crate::{Outcome, SettingsError};

pub(super) struct Target {
    pub(super) settings: RedisSettings,
}

impl Target {
    pub(super) fn new(settings: RedisSettings) -> Result<Self, SettingsError> {
        Ok(Self { settings })
    }
}

pub(super) async fn collect(_target: Arc<Target>, _deadline: Instant) -> Outcome {
    Outcome::from_result(Vec::new(), Ok(()))
}
