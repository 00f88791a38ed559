//! Authentication: answering a registry's 401 challenge with a Bearer token (fetched by
//! [`token`], cached by [`cache`]) or Basic credentials, and looking up the credentials once
//! per repository. Which request carries which `Authorization` is decided in
//! `client::send` (`client/send.rs`).

mod cache;
mod scope;
mod token;

use std::sync::Arc;

use base64::Engine as _;
use reqwest::header::HeaderValue;
use tracing::debug;

use crate::challenge::{Challenge, parse_www_authenticate};
use crate::client::{ErrorBody, Target};
use crate::credentials::{Credential, CredentialStore};
use crate::{Client, Error};

pub(crate) use cache::{AuthCache, CredentialLookup};
pub(crate) use scope::merge_scopes;
pub(crate) use token::TokenResponse;

impl Client {
    /// Answers the challenges of a 401: a Bearer token (cached per registry and scope) or
    /// Basic credentials. Returns the `Authorization` value to retry with.
    pub(crate) async fn authenticate(
        &self,
        target: &Target,
        challenges: Vec<String>,
        refusal: &ErrorBody,
    ) -> Result<HeaderValue, Error> {
        let unauthorized = |message: String| Error::Unauthorized {
            registry: target.registry.clone(),
            repository: target.repository.clone(),
            message,
        };
        if challenges.is_empty() {
            return Err(unauthorized(refusal.describe(
                "the registry answered 401 without a WWW-Authenticate challenge",
            )));
        }
        let mut parsed = Vec::new();
        for header in &challenges {
            parsed.extend(parse_www_authenticate(header)?);
        }
        let bearer = parsed.iter().find_map(|challenge| match challenge {
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => Some((realm.clone(), service.clone(), scope.clone())),
            _ => None,
        });
        let basic = parsed
            .iter()
            .any(|challenge| matches!(challenge, Challenge::Basic { .. }));
        let credential = self.credential(target).await?;

        if let Some((realm, service, scope)) = bearer {
            let scope = merge_scopes(scope.as_deref(), &target.scope);
            let (header, usable_until) = self
                .fetch_token(
                    target,
                    &realm,
                    service.as_deref(),
                    &scope,
                    (*credential).as_ref(),
                )
                .await?;
            self.auth_cache().store_token(
                &target.registry,
                &target.scope,
                header.clone(),
                usable_until,
            );
            return Ok(header);
        }
        if !basic {
            return Err(unauthorized(format!(
                "no supported challenge in WWW-Authenticate {:?}",
                challenges.join(", ")
            )));
        }
        match &*credential {
            Some(Credential::Basic { username, password }) => {
                let header = basic_header(username, password).ok_or_else(|| {
                    unauthorized("the stored credentials cannot be sent in an http header".to_owned())
                })?;
                self.auth_cache()
                    .store_basic(&target.registry, &target.scope, header.clone());
                debug!(registry = %target.registry, "answering a basic challenge with stored credentials");
                Ok(header)
            }
            Some(_) => Err(unauthorized(
                "the registry asks for basic authentication but the stored credential is an identity token".to_owned(),
            )),
            None => Err(unauthorized(refusal.describe(&format!(
                "the registry asks for basic authentication and no credentials are stored for {}",
                target.registry
            )))),
        }
    }

    /// Looks up (once per client and repository) the credential for the target's repository
    /// (keys naming the repository first, then the registry host), on the blocking pool:
    /// credential helpers are processes.
    async fn credential(&self, target: &Target) -> Result<CredentialLookup, Error> {
        let auth = self.auth_cache();
        if let Some(known) = auth.credential(&target.registry, &target.repository) {
            return Ok(known);
        }
        let store: CredentialStore = self.config().credentials.clone();
        let (registry, repository) = (target.registry.clone(), target.repository.clone());
        let found = tokio::task::spawn_blocking(move || store.get_for(&registry, &repository))
            .await
            .map_err(|source| Error::CredentialTask {
                registry: target.registry.clone(),
                source,
            })??;
        debug!(registry = %target.registry, repository = %target.repository, found = found.is_some(), "looked up credentials");
        let found = Arc::new(found);
        auth.store_credential(&target.registry, &target.repository, found.clone());
        Ok(found)
    }
}

/// `Basic base64(username:password)`, marked sensitive so that it never shows in logs.
pub(crate) fn basic_header(username: &str, password: &str) -> Option<HeaderValue> {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    sensitive_header(&format!("Basic {encoded}"))
}

/// `Bearer <token>`, marked sensitive.
pub(crate) fn bearer_header(token: &str) -> Option<HeaderValue> {
    sensitive_header(&format!("Bearer {token}"))
}

fn sensitive_header(value: &str) -> Option<HeaderValue> {
    let mut header = HeaderValue::from_str(value).ok()?;
    header.set_sensitive(true);
    Some(header)
}
