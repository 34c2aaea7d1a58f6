//! A refusal as the access flow decides it: what kind of answer it is, why (for the
//! metric and the log), and the challenge a client follows to get in. The HTTP
//! adapters turn it into a status, `WWW-Authenticate` and a body; the challenge's
//! wording (RFC 6750 §3 with RFC 9728 §5.1's `resource_metadata`) is fixed here so
//! that forward-auth and the gateway say exactly the same.

use std::fmt;

use crate::config::ResourceConfig;
use crate::domain::scope::Scopes;
use crate::flows::limits::{Budget, Limited};

/// A request not let through.
#[derive(Debug, thiserror::Error)]
#[error("request refused: {reason}")]
pub struct Denial {
    pub refusal: Refusal,
    /// The metric and log reason.
    pub reason: &'static str,
    /// What the client is told to do; absent when no resource matched. Boxed: a
    /// refusal is the rare path, and a small error keeps the passing one lean.
    pub challenge: Option<Box<Challenge>>,
    /// The budget a rate-limit refusal reports (the `RateLimit` headers).
    pub budget: Option<Box<Budget>>,
}

/// The kind of answer a refusal gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400 `invalid_request`: the request cannot be judged at all (a proxy would route
    /// it differently from how the broker reads it); the description says why.
    Unjudgeable(&'static str),
    /// 401: no usable token (RFC 6750 §3.1).
    Unauthenticated,
    /// 403: the token does not reach this resource or operation.
    Forbidden,
    /// 405 (`Allow: POST`): a tokenless stream or session end on a resource open to
    /// anonymous callers, which MCP clients take as "no stream here".
    StreamRefused,
    /// 429: over a rate-limit budget; `Retry-After` this many seconds.
    Limited { retry_after_secs: u64 },
    /// 503: the rate-limit counters cannot be reached (Redis down); `Retry-After` this
    /// many seconds.
    LimitUnavailable { retry_after_secs: u64 },
    /// 403 `access_denied` with a JSON body: the client address is on the resource's
    /// deny list or off its allow list (`[resources.addresses]`); nothing else of the
    /// request was read, and no challenge is offered (no token would help).
    AddressRefused,
    /// 503: the token cannot be judged now — its grant's standing cannot be read (the
    /// store is down) or the provider's keys cannot be had; `Retry-After` this many
    /// seconds. Fail closed, without telling the client its token is bad.
    Unavailable { retry_after_secs: u64 },
}

/// How long a client is asked to wait when the rate-limit counters, or what judges a
/// token, are unreachable.
const UNAVAILABLE_RETRY_SECS: u64 = 5;

/// A `WWW-Authenticate: Bearer …` challenge's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Where the resource's metadata is, every scope the operation needs (omitted when
    /// none), and, when a token was presented, what was wrong with it.
    Bearer {
        resource_metadata: String,
        scope: String,
        error: Option<&'static str>,
        description: Option<String>,
    },
    /// 403 `access_denied`: no step-up helps, so no `scope`.
    AccessDenied {
        resource_metadata: String,
        description: String,
    },
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bearer {
                resource_metadata,
                scope,
                error,
                description,
            } => {
                write!(f, "Bearer resource_metadata=\"{resource_metadata}\"")?;
                if !scope.is_empty() {
                    write!(f, ", scope=\"{scope}\"")?;
                }
                if let Some(error) = error {
                    write!(f, ", error=\"{error}\"")?;
                }
                if let Some(description) = description {
                    write!(f, ", error_description=\"{description}\"")?;
                }
                Ok(())
            }
            Self::AccessDenied {
                resource_metadata,
                description,
            } => write!(
                f,
                "Bearer error=\"access_denied\", error_description=\"{description}\", resource_metadata=\"{resource_metadata}\""
            ),
        }
    }
}

impl Denial {
    /// 400: the request cannot be judged.
    pub fn unjudgeable(reason: &'static str, description: &'static str) -> Self {
        Self {
            refusal: Refusal::Unjudgeable(description),
            reason,
            challenge: None,
            budget: None,
        }
    }

    /// 403 without a challenge: no configured resource covers the path.
    pub(super) fn no_resource() -> Self {
        Self {
            refusal: Refusal::Forbidden,
            reason: "no_resource",
            challenge: None,
            budget: None,
        }
    }

    /// 405 for a tokenless stream where anonymous callers are let in.
    pub(super) fn anonymous_stream() -> Self {
        Self {
            refusal: Refusal::StreamRefused,
            reason: "anonymous_stream",
            challenge: None,
            budget: None,
        }
    }

    /// 401 for a missing or unusable token: `needed` names everything the operation
    /// takes; `error` the RFC 6750 code, if the request presented a token at all.
    pub(super) fn unauthenticated(
        resource: &ResourceConfig,
        reason: &'static str,
        error: Option<&'static str>,
        needed: &Scopes,
    ) -> Self {
        Self {
            refusal: Refusal::Unauthenticated,
            reason,
            challenge: Some(Box::new(Challenge::bearer(resource, error, needed, None))),
            budget: None,
        }
    }

    /// 403 `insufficient_scope`: `needed` is what the operation takes,
    /// `description` names what was missing of it.
    pub(super) fn insufficient_scope(
        resource: &ResourceConfig,
        needed: &Scopes,
        description: String,
    ) -> Self {
        Self {
            refusal: Refusal::Forbidden,
            reason: "insufficient_scope",
            challenge: Some(Box::new(Challenge::bearer(
                resource,
                Some("insufficient_scope"),
                needed,
                Some(description),
            ))),
            budget: None,
        }
    }

    /// 401 `invalid_token` for a token the exchange flow can never hand on (its grant
    /// is revoked or holds no provider token): a retry would not help, so no 503.
    pub(crate) fn not_exchangeable(resource: &ResourceConfig, description: String) -> Self {
        Self {
            refusal: Refusal::Unauthenticated,
            reason: "not_exchangeable",
            challenge: Some(Box::new(Challenge::bearer(
                resource,
                Some("invalid_token"),
                &Scopes::default(),
                Some(description),
            ))),
            budget: None,
        }
    }

    /// 403 `access_denied`.
    pub(super) fn access_denied(resource: &ResourceConfig, description: String) -> Self {
        Self {
            refusal: Refusal::Forbidden,
            reason: "access_denied",
            challenge: Some(Box::new(Challenge::AccessDenied {
                resource_metadata: metadata_url(resource),
                description,
            })),
            budget: None,
        }
    }

    /// 403: the client address may not reach the resource.
    pub(super) fn address_refused() -> Self {
        Self {
            refusal: Refusal::AddressRefused,
            reason: "address_refused",
            challenge: None,
            budget: None,
        }
    }

    /// 503: the token cannot be judged now (`reason`: the rejection's).
    pub(super) fn unavailable(reason: &'static str) -> Self {
        Self {
            refusal: Refusal::Unavailable {
                retry_after_secs: UNAVAILABLE_RETRY_SECS,
            },
            reason,
            challenge: None,
            budget: None,
        }
    }

    /// 429 over a budget, or 503 without the counters.
    pub(crate) fn limited(limited: Limited) -> Self {
        match limited {
            Limited::Over {
                budget,
                retry_after_secs,
            } => Self {
                refusal: Refusal::Limited { retry_after_secs },
                reason: "rate_limited",
                challenge: None,
                budget: Some(Box::new(budget)),
            },
            Limited::Unavailable => Self {
                refusal: Refusal::LimitUnavailable {
                    retry_after_secs: UNAVAILABLE_RETRY_SECS,
                },
                reason: "rate_limit_unavailable",
                challenge: None,
                budget: None,
            },
        }
    }
}

impl Challenge {
    /// The resource's challenge; `scope` defaults to its `scopes_supported` when the
    /// operation names none.
    fn bearer(
        resource: &ResourceConfig,
        error: Option<&'static str>,
        scope: &Scopes,
        description: Option<String>,
    ) -> Self {
        let scope = if scope.is_empty() {
            resource.scopes_supported.join(" ")
        } else {
            scope.to_string()
        };
        Self::Bearer {
            resource_metadata: metadata_url(resource),
            scope,
            error,
            description,
        }
    }
}

/// Where the resource's metadata lives (RFC 9728 §3.1): its origin, the well-known
/// prefix, then its path.
pub fn metadata_url(resource: &ResourceConfig) -> String {
    let origin = url::Url::parse(&resource.uri)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    format!(
        "{origin}/.well-known/oauth-protected-resource{}",
        resource.path
    )
}
