//! [`AuthCache`]: what the client remembers about authentication: bearer tokens per
//! (registry, scope) until they expire, Basic headers a registry took, and looked-up
//! credentials.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use reqwest::header::HeaderValue;

use crate::credentials::Credential;

/// (registry, scope) or (registry, repository).
type Key = (String, String);

/// The outcome of one credential lookup, shared by the requests that need it.
pub(crate) type CredentialLookup = Arc<Option<Credential>>;

/// A bearer token ready to send, and until when to use it.
struct CachedToken {
    header: HeaderValue,
    usable_until: SystemTime,
}

/// The client's authentication memory. Every entry belongs to one registry; nothing here is
/// ever sent to another host.
#[derive(Default)]
pub(crate) struct AuthCache {
    /// Bearer tokens by (registry, scope).
    tokens: Mutex<HashMap<Key, CachedToken>>,
    /// The Basic `Authorization` value for (registry, scope) where the registry challenged
    /// with Basic.
    basic: Mutex<HashMap<Key, HeaderValue>>,
    /// Credentials looked up so far, by (registry, repository) (`None`: the store has none).
    credentials: Mutex<HashMap<Key, CredentialLookup>>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps stay consistent even if a holder panicked: every update is one insert/remove.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AuthCache {
    /// The `Authorization` value to send proactively to `registry` for `scope`: a token that
    /// has not expired, else the Basic header the registry took before, else nothing.
    pub(crate) fn authorization(
        &self,
        registry: &str,
        scope: &str,
        now: SystemTime,
    ) -> Option<HeaderValue> {
        let key = (registry.to_owned(), scope.to_owned());
        {
            let mut tokens = locked(&self.tokens);
            match tokens.get(&key) {
                Some(token) if token.usable_until > now => return Some(token.header.clone()),
                Some(_) => {
                    tokens.remove(&key);
                }
                None => {}
            }
        }
        locked(&self.basic).get(&key).cloned()
    }

    /// Remembers a token for (registry, scope) until `usable_until`.
    pub(crate) fn store_token(
        &self,
        registry: &str,
        scope: &str,
        header: HeaderValue,
        usable_until: SystemTime,
    ) {
        locked(&self.tokens).insert(
            (registry.to_owned(), scope.to_owned()),
            CachedToken {
                header,
                usable_until,
            },
        );
    }

    /// Remembers that `registry` takes this Basic header for `scope`.
    pub(crate) fn store_basic(&self, registry: &str, scope: &str, header: HeaderValue) {
        locked(&self.basic).insert((registry.to_owned(), scope.to_owned()), header);
    }

    /// Forgets what was sent to `registry` for `scope` and refused.
    pub(crate) fn forget(&self, registry: &str, scope: &str) {
        let key = (registry.to_owned(), scope.to_owned());
        locked(&self.tokens).remove(&key);
        locked(&self.basic).remove(&key);
    }

    /// A credential looked up before for `repository` in `registry`.
    pub(crate) fn credential(&self, registry: &str, repository: &str) -> Option<CredentialLookup> {
        locked(&self.credentials)
            .get(&(registry.to_owned(), repository.to_owned()))
            .cloned()
    }

    /// Remembers the outcome of a credential lookup.
    pub(crate) fn store_credential(
        &self,
        registry: &str,
        repository: &str,
        credential: CredentialLookup,
    ) {
        locked(&self.credentials).insert((registry.to_owned(), repository.to_owned()), credential);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::auth::{basic_header, bearer_header};

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn cache_hands_out_tokens_until_expiry_and_per_scope() {
        let cache = AuthCache::default();
        let now = at(1000);
        let token = bearer_header("t1").unwrap();
        cache.store_token(
            "r.example",
            "repository:a:pull",
            token.clone(),
            now + Duration::from_secs(10),
        );
        assert_eq!(
            cache.authorization("r.example", "repository:a:pull", now),
            Some(token)
        );
        assert_eq!(
            cache.authorization("r.example", "repository:b:pull", now),
            None
        );
        assert_eq!(
            cache.authorization("other.example", "repository:a:pull", now),
            None
        );
        assert_eq!(
            cache.authorization(
                "r.example",
                "repository:a:pull",
                now + Duration::from_secs(10)
            ),
            None
        );

        let basic = basic_header("user", "pass").unwrap();
        assert_eq!(basic.to_str().unwrap(), "Basic dXNlcjpwYXNz");
        assert!(basic.is_sensitive());
        cache.store_basic("r.example", "repository:b:pull", basic.clone());
        assert_eq!(
            cache.authorization("r.example", "repository:b:pull", now),
            Some(basic)
        );
        assert_eq!(
            cache.authorization("r.example", "repository:c:pull", now),
            None
        );
        cache.forget("r.example", "repository:b:pull");
        assert_eq!(
            cache.authorization("r.example", "repository:b:pull", now),
            None
        );
    }
}
