//! HTTP basic auth against exporter-toolkit's `basic_auth_users` (user:
//! bcrypt hash).
//!
//! bcrypt is slow on purpose: cost 10 takes about 70 ms here, paid on
//! every request, so a Prometheus scraping every few seconds would spend a
//! core on it. Like exporter-toolkit, successful checks are remembered for
//! a short while, keyed by a SHA-256 of user and password (the password
//! itself is not kept). Failed checks are never remembered, so guessing
//! still costs a bcrypt per try.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use base64::Engine as _;
use hyper::header::HeaderValue;

/// How long a successful check is remembered.
const REMEMBER: Duration = Duration::from_secs(60);
/// Scrapers are few; past this many remembered logins the memory is
/// dropped rather than grown.
const REMEMBER_AT_MOST: usize = 256;

pub struct BasicAuth {
    users: HashMap<String, String>,
    /// A hash of nothing at the highest configured cost, checked for
    /// unknown users so that they take as long as known ones.
    decoy: String,
    remembered: Mutex<HashMap<[u8; 32], Instant>>,
}

/// A `basic_auth_users` entry that is not a bcrypt hash.
#[derive(Debug, thiserror::Error)]
#[error("{user}: {message}")]
pub struct HashError {
    pub user: String,
    pub message: String,
}

impl BasicAuth {
    /// Checks every hash; bcrypt hashes look like `$2y$10$` and 53 more
    /// characters (`htpasswd -nBC 10 "" | tr -d ':\n'` makes one).
    pub fn new(users: BTreeMap<String, String>) -> Result<Self, HashError> {
        // bcrypt's lowest cost; raised to the highest configured below.
        let mut cost = 4;
        for (user, hash) in &users {
            let parts: bcrypt::HashParts = hash.parse().map_err(|e| HashError {
                user: user.clone(),
                message: format!(
                    "not a bcrypt hash ({e}); make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`"
                ),
            })?;
            cost = cost.max(parts.get_cost());
        }
        let decoy = bcrypt::hash("", cost).map_err(|e| HashError {
            user: users.keys().next().cloned().unwrap_or_default(),
            message: format!("failed to hash at cost {cost}: {e}"),
        })?;
        Ok(Self {
            users: users.into_iter().collect(),
            decoy,
            remembered: Mutex::new(HashMap::new()),
        })
    }

    pub fn users(&self) -> usize {
        self.users.len()
    }

    /// Whether `authorization` (the request's header) names a user with
    /// the right password. bcrypt runs on the blocking pool, off the
    /// runtime thread.
    pub async fn allows(self: &Arc<Self>, authorization: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = authorization.and_then(credentials) else {
            return false;
        };
        let key = fingerprint(&user, &password);
        if self.recalls(&key) {
            return true;
        }
        let this = self.clone();
        let verified = tokio::task::spawn_blocking(move || {
            // Unknown users are checked against the decoy, so the time
            // taken does not tell which users exist.
            let (hash, known) = match this.users.get(&user) {
                Some(hash) => (hash.as_str(), true),
                None => (this.decoy.as_str(), false),
            };
            bcrypt::verify(&password, hash).unwrap_or(false) && known
        })
        .await
        .unwrap_or(false);
        if verified {
            self.remember(key);
        }
        verified
    }

    fn recalls(&self, key: &[u8; 32]) -> bool {
        let remembered = self
            .remembered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        remembered
            .get(key)
            .is_some_and(|at| at.elapsed() < REMEMBER)
    }

    fn remember(&self, key: [u8; 32]) {
        let mut remembered = self
            .remembered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if remembered.len() >= REMEMBER_AT_MOST {
            remembered.clear();
        }
        remembered.insert(key, Instant::now());
    }
}

/// `Basic base64(user:password)` → (user, password).
fn credentials(header: &HeaderValue) -> Option<(String, String)> {
    let value = header.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn fingerprint(user: &str, password: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    // The length prefix keeps ("ab", "c") and ("a", "bc") apart.
    ctx.update(&(user.len() as u64).to_le_bytes());
    ctx.update(user.as_bytes());
    ctx.update(password.as_bytes());
    ctx.finish()
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    #[test]
    fn checks_users_and_passwords() {
        let users = BTreeMap::from([("alice".to_owned(), bcrypt::hash("s3cret:x", 4).unwrap())]);
        let auth = Arc::new(BasicAuth::new(users).unwrap());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            assert!(auth.allows(Some(&header("alice", "s3cret:x"))).await);
            // Remembered now; still right.
            assert!(auth.allows(Some(&header("alice", "s3cret:x"))).await);
            assert!(!auth.allows(Some(&header("alice", "s3cret"))).await);
            assert!(!auth.allows(Some(&header("bob", "s3cret:x"))).await);
            assert!(!auth.allows(None).await);
            let bearer = HeaderValue::from_static("Bearer abc");
            assert!(!auth.allows(Some(&bearer)).await);
            let garbage = HeaderValue::from_static("Basic !!!");
            assert!(!auth.allows(Some(&garbage)).await);
        });
    }

    #[test]
    fn rejects_what_is_not_a_bcrypt_hash() {
        for hash in ["plain", "$2y$10$short", "$1$abc$defghijklmnopqrstuvwxy"] {
            let users = BTreeMap::from([("bob".to_owned(), hash.to_owned())]);
            let e = BasicAuth::new(users)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.starts_with("bob: not a bcrypt hash"), "{hash}: {e}");
        }
    }
}
