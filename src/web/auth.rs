//! `basic_auth_users`: HTTP basic authentication against bcrypt hashes.
//!
//! bcrypt is slow on purpose (cost 10 is about 70 ms of CPU), so three things keep it from becoming
//! a way in or a way down:
//! - an unknown user is checked against a dummy hash of the same cost as the real ones, so the time
//!   an answer takes does not tell which user names exist;
//! - one comparison runs at a time, on a blocking thread, so a flood of wrong passwords costs one
//!   core and never the HTTP workers;
//! - a successful check is remembered (as a SHA-256 of user, hash and password, never the password
//!   itself), so Prometheus' scrapes with the right password cost one hash lookup each.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

use super::Place;
use crate::config::ConfigError;

/// Remembered successful checks, at most; past it the memory starts afresh.
const CACHE_SIZE: usize = 1024;

/// The users and what checking them needs.
pub struct BasicAuth {
    users: HashMap<String, SecretString>,
    /// What an unknown user's password is compared with, of the highest cost among the users.
    dummy: SecretString,
    passed: Mutex<HashSet<[u8; 32]>>,
    one_at_a_time: Arc<tokio::sync::Semaphore>,
}

impl BasicAuth {
    pub(super) fn new(
        users: BTreeMap<String, serde_yaml::Value>,
        place: &Place<'_>,
    ) -> Result<Self, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut checked = HashMap::new();
        let mut highest_cost = 4;
        for (user, hash) in users {
            let at = ["basic_auth_users", user.as_str()];
            // The value is not quoted in any error: a password written where its hash belongs would
            // otherwise end up in the log.
            let serde_yaml::Value::String(hash) = hash else {
                errors.push(place.error(&at, "expected a bcrypt hash, as a string"));
                continue;
            };
            if user.contains(':') {
                errors.push(place.error(
                    &at,
                    "a user name cannot contain ':' (basic authentication splits there)",
                ));
                continue;
            }
            match hash.parse::<bcrypt::HashParts>() {
                Ok(parts) => highest_cost = highest_cost.max(parts.get_cost()),
                Err(_) => {
                    errors.push(place.error(
                        &at,
                        "not a bcrypt hash (expected $2y$<cost>$ and 53 more characters, as `htpasswd -nBC 10 \"\" | tr -d ':\\n'` prints it)",
                    ));
                    continue;
                }
            }
            checked.insert(user, SecretString::from(hash));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        // Hashed once at start, at the users' cost. Its password need not be secret: an unknown
        // user is refused whether it matches or not.
        let dummy = bcrypt::hash("fanout_exporter: no such user", highest_cost)
            .map_err(|e| vec![place.error(&["basic_auth_users"], e.to_string())])?;
        Ok(Self {
            users: checked,
            dummy: SecretString::from(dummy),
            passed: Mutex::new(HashSet::new()),
            one_at_a_time: Arc::new(tokio::sync::Semaphore::new(1)),
        })
    }

    /// How many users there are, for the log.
    pub fn users(&self) -> usize {
        self.users.len()
    }

    /// Whether an `Authorization` header's value names a user and their password.
    pub async fn allows(&self, authorization: Option<&[u8]>) -> bool {
        let Some((user, password)) = authorization.and_then(credentials) else {
            return false;
        };
        let (hash, known) = match self.users.get(&user) {
            Some(hash) => (hash, true),
            None => (&self.dummy, false),
        };
        let key = cache_key(&user, hash.expose_secret(), &password);
        if known && self.remembered(&key) {
            return true;
        }
        let Ok(_turn) = Arc::clone(&self.one_at_a_time).acquire_owned().await else {
            return false;
        };
        // Copied only for a comparison actually run: the blocking thread needs its own.
        let hash = hash.expose_secret().to_owned();
        let matches = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
        let allowed = matches && known;
        if allowed {
            let mut passed = self.passed.lock().unwrap_or_else(PoisonError::into_inner);
            if passed.len() >= CACHE_SIZE {
                passed.clear();
            }
            passed.insert(key);
        }
        allowed
    }

    fn remembered(&self, key: &[u8; 32]) -> bool {
        self.passed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(key)
    }
}

/// User and password of a `Basic` authorization value.
fn credentials(value: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn cache_key(user: &str, hash: &str, password: &str) -> [u8; 32] {
    let mut digest = Sha256::new();
    for part in [user, hash, password] {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part.as_bytes());
    }
    digest.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(users: &[(&str, &str)]) -> BasicAuth {
        let text = String::new();
        let place = Place {
            source: "web.yml",
            text: &text,
            dir: std::path::Path::new("."),
        };
        let users = users
            .iter()
            .map(|(u, h)| ((*u).to_owned(), serde_yaml::Value::String((*h).to_owned())))
            .collect();
        BasicAuth::new(users, &place)
            .map_err(|_| "bad users")
            .unwrap()
    }

    fn basic(user: &str, password: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
        .into_bytes()
    }

    #[tokio::test]
    async fn the_right_password_passes_and_nothing_else_does() {
        let hash = bcrypt::hash("pässword:with colon", 4).unwrap();
        let auth = auth(&[("prometheus", &hash)]);
        assert!(
            auth.allows(Some(&basic("prometheus", "pässword:with colon")))
                .await
        );
        // Remembered now, and still right.
        assert!(
            auth.allows(Some(&basic("prometheus", "pässword:with colon")))
                .await
        );
        assert!(!auth.allows(Some(&basic("prometheus", "password"))).await);
        assert!(
            !auth
                .allows(Some(&basic("nobody", "pässword:with colon")))
                .await
        );
        assert!(!auth.allows(None).await);
        assert!(!auth.allows(Some(b"Bearer abc")).await);
        assert!(!auth.allows(Some(b"Basic !!!not base64")).await);
    }

    #[test]
    fn the_dummy_hash_has_the_users_cost() {
        let auth = auth(&[("a", &bcrypt::hash("x", 5).unwrap())]);
        let parts: bcrypt::HashParts = auth.dummy.expose_secret().parse().unwrap();
        assert_eq!(parts.get_cost(), 5);
    }
}
