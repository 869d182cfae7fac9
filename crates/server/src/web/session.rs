//! Signing in to the web UI: an API token is exchanged for a session cookie,
//! and every form carries a CSRF token.
//!
//! The cookie (`tako_session`, `HttpOnly`, `SameSite=Strict`, `Secure` when
//! the public URL is HTTPS) is encrypted and authenticated with the session
//! key (derived from the master key). It holds the SHA-256 of the API token
//! (never the token), an expiry and a random nonce. Each request looks the
//! token up again, so revoking a token signs its browsers out at once. The
//! CSRF token of a session is an HMAC of its nonce under the session key;
//! every POST must carry it in the `csrf` field. Sign-out deletes the cookie
//! from the browser; a copy taken before stays valid until its expiry
//! (12 hours) unless the token is revoked.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use chrono::{TimeDelta, Utc};
use cookie::{Cookie, CookieJar, SameSite};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tako_store::TokenHash;

use crate::http::audit::AuditActor;
use crate::services::{Principal, ServiceError};
use crate::state::AppState;
use crate::web::WebError;

/// The session cookie's name.
pub(crate) const COOKIE_NAME: &str = "tako_session";
/// How long a session lasts.
const SESSION_LIFETIME: TimeDelta = TimeDelta::hours(12);

/// A signed-in browser: who it is and the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The token behind the session.
    pub(crate) who: Principal,
    /// The value every form of this session posts as `csrf`.
    pub(crate) csrf: String,
}

impl Session {
    /// Checks a posted CSRF token (in constant time).
    pub(crate) fn check_csrf(&self, posted: &str) -> Result<(), WebError> {
        let expected = self.csrf.as_bytes();
        if !expected.is_empty()
            && expected.len() == posted.len()
            && constant_time_eq(expected, posted.as_bytes())
        {
            Ok(())
        } else {
            Err(WebError::Csrf)
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The CSRF token of a session nonce.
fn csrf_for(key: &cookie::Key, nonce: &str) -> String {
    // A 64-byte key is always accepted by HMAC.
    match Hmac::<Sha256>::new_from_slice(key.signing()) {
        Ok(mut mac) => {
            mac.update(b"tako csrf v1\0");
            mac.update(nonce.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// The cookie that signs in the holder of the token with `hash`.
pub(crate) fn session_cookie(
    key: &cookie::Key,
    hash: &TokenHash,
    secure: bool,
) -> Result<Cookie<'static>, WebError> {
    let mut nonce = [0u8; 16];
    crate::startup::random_bytes(&mut nonce).map_err(|e| WebError::Internal(e.to_string()))?;
    let expires = (Utc::now() + SESSION_LIFETIME).timestamp();
    let value = format!("{}.{}.{}", hex::encode(hash.0), expires, hex::encode(nonce));
    let mut jar = CookieJar::new();
    jar.private_mut(key).add(
        Cookie::build((COOKIE_NAME, value))
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Strict)
            .max_age(cookie::time::Duration::seconds(
                SESSION_LIFETIME.num_seconds(),
            ))
            .build(),
    );
    jar.get(COOKIE_NAME)
        .cloned()
        .ok_or_else(|| WebError::Internal("the session cookie was not built".to_owned()))
}

/// The cookie that deletes the session cookie.
pub(crate) fn removal_cookie(secure: bool) -> Cookie<'static> {
    Cookie::build((COOKIE_NAME, ""))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::ZERO)
        .build()
}

/// The decrypted session of a request's cookie: the token hash and nonce,
/// when present, authentic and unexpired.
fn read_cookie(key: &cookie::Key, headers: &HeaderMap) -> Option<(TokenHash, String)> {
    let mut jar = CookieJar::new();
    for value in headers.get_all(header::COOKIE) {
        for part in value.to_str().ok()?.split(';') {
            if let Ok(cookie) = Cookie::parse(part.trim().to_owned())
                && cookie.name() == COOKIE_NAME
            {
                jar.add_original(cookie);
            }
        }
    }
    let cookie = jar.private(key).get(COOKIE_NAME)?;
    let mut parts = cookie.value().splitn(3, '.');
    let hash = hex::decode(parts.next()?).ok()?;
    let expires: i64 = parts.next()?.parse().ok()?;
    let nonce = parts.next()?.to_owned();
    if expires <= Utc::now().timestamp() {
        return None;
    }
    Some((TokenHash(hash.try_into().ok()?), nonce))
}

/// Whether a request that changes something comes from this server's own
/// pages: a browser's `Origin` (or `Sec-Fetch-Site`) must not name another
/// site. Absent headers pass (the CSRF token still has to match).
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host)
}

impl FromRequestParts<Arc<AppState>> for Session {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let key = &state.services.keys.session_key;
        let signed_out = || {
            if parts.method == Method::GET || parts.method == Method::HEAD {
                let next = parts
                    .uri
                    .path_and_query()
                    .map_or("/ui/", |p| p.as_str())
                    .to_owned();
                WebError::SignIn { next }
            } else {
                WebError::Service(ServiceError::Unauthenticated)
            }
        };
        let Some((hash, nonce)) = read_cookie(key, &parts.headers) else {
            return Err(signed_out());
        };
        let who = match state.services.authenticate(&hash).await {
            Ok(who) => who,
            Err(ServiceError::Unauthenticated) => return Err(signed_out()),
            Err(other) => return Err(WebError::Service(other)),
        };
        if parts.method != Method::GET && parts.method != Method::HEAD {
            if !same_origin(&parts.headers) {
                return Err(WebError::Csrf);
            }
            if let Some(actor) = parts.extensions.get::<AuditActor>() {
                actor.set(&who);
            }
        }
        Ok(Session {
            csrf: csrf_for(key, &nonce),
            who,
        })
    }
}
