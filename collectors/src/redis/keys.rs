//! STUB: key checks and custom commands.
use super::RedisSettings;
use crate::SettingsError;

pub(super) fn validate(_settings: &RedisSettings) -> Result<(), SettingsError> {
    Ok(())
}
