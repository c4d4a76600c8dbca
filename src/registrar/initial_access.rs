//! Initial access tokens at registration (RFC 7591 §3; `crate::iat`): verified before anything
//! else of the request is read, refused when withdrawn, and, for a token of limited uses, one
//! use taken once the registration has passed every other check.

use std::sync::Arc;
use std::time::Duration;

use super::{Registrar, RegistrationError};
use crate::iat::{self, TokenClaims, TokenError};
use crate::keys::RegistrarKeys;
use crate::status::withdrawal::Registration;
use crate::status::{StoreError, TokenUse};

/// Verified tokens kept, and for how long: a minute, so that a token whose key was removed from
/// the key set stops working within a minute (expiry and withdrawal are checked at every use).
pub(super) const VERIFIED_TOKENS: u64 = 10_000;
pub(super) const VERIFIED_TOKEN_TTL: Duration = Duration::from_secs(60);

/// Longest token kept in the cache: longer ones are verified every time (they are not ours).
const CACHED_TOKEN_MAX_LEN: usize = 4096;

impl Registrar {
    /// The claims of a presented token this registrar accepts now.
    pub(super) async fn initial_access_token(
        &self,
        keys: &RegistrarKeys,
        token: &str,
        now: u64,
    ) -> Result<Arc<TokenClaims>, RegistrationError> {
        let claims = match self.verified_tokens.get(token) {
            Some(claims) if now >= claims.exp => {
                return Err(RegistrationError::InvalidInitialAccessToken(
                    TokenError::Expired,
                ))
            }
            Some(claims) => claims,
            None => {
                let claims = Arc::new(
                    iat::verify(
                        &keys.verification().verifiers,
                        &self.endpoints.issuer,
                        token,
                        now,
                    )
                    .map_err(RegistrationError::InvalidInitialAccessToken)?,
                );
                if token.len() <= CACHED_TOKEN_MAX_LEN {
                    self.verified_tokens
                        .insert(token.to_owned(), claims.clone());
                }
                claims
            }
        };
        if claims.max_uses.is_some() && self.status.is_none() {
            // only the status store can count uses (management = "full")
            return Err(RegistrationError::InvalidInitialAccessToken(
                TokenError::Exhausted,
            ));
        }
        // A token is withdrawn like a statement: an operator withdrawal naming the registrar's
        // own issuer and the token's jti (`stateless-dcr revoke --statement-jti`).
        if let Some(status) = &self.status {
            let withdrawals = match status.withdrawal_set().await {
                Ok(withdrawals) => Some(withdrawals),
                // as for statements: registration goes on with the set last read
                Err(StoreError::Unavailable(_)) => status.last_withdrawal_set(),
                Err(e) => return Err(e.into()),
            };
            let registration = Registration {
                issuer: &self.endpoints.issuer,
                software_id: None,
                statement_jti: Some(&claims.jti),
                registered_at: now,
            };
            if withdrawals.is_some_and(|w| w.covering(&registration).is_some()) {
                return Err(RegistrationError::InvalidInitialAccessToken(
                    TokenError::Withdrawn,
                ));
            }
        }
        Ok(claims)
    }

    /// Take one use of a token of limited uses: the one write a registration can make.
    pub(super) async fn take_token_use(
        &self,
        keys: &RegistrarKeys,
        claims: &TokenClaims,
    ) -> Result<(), RegistrationError> {
        let (Some(max_uses), Some(status)) = (claims.max_uses, &self.status) else {
            return Ok(());
        };
        match status
            .take_token_use(keys, &claims.jti, max_uses, claims.exp)
            .await?
        {
            TokenUse::Taken(_) => Ok(()),
            TokenUse::Exhausted => Err(RegistrationError::InvalidInitialAccessToken(
                TokenError::Exhausted,
            )),
        }
    }
}
