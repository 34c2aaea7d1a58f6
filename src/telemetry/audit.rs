//! The audit trail: one structured event per security decision, written with
//! `tracing` on its own target `audit` (so `log.level` / `RUST_LOG` can route it, e.g.
//! `info,audit=info` or `warn,audit=info`) and counted in
//! `token_broker_audit_events_total{event}`. Field names are stable snake_case. No
//! event carries a token, code, secret or assertion; subjects are pseudonymised
//! (`base64url(HMAC-SHA256(key, subject))`) when `[audit] pseudonymize_subjects` is on.
//!
//! Refusals (rate limits, address lists, tokens) are hot paths: the counters are resolved
//! once here, and an event's fields are formatted only when a subscriber takes the
//! `audit` target, so with audit output off an event costs one atomic increment.

use std::fmt;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use crate::config::Secret;

/// One security decision. Borrowed fields: building an event allocates nothing.
#[derive(Debug, Clone, Copy)]
pub enum AuditEvent<'a> {
    /// A client was registered (RFC 7591; not a reused registration).
    ClientRegistered { client_id: &'a str },
    /// A client was deleted by an operator (`DELETE /admin/clients/{id}`).
    ClientDeleted { client_id: &'a str },
    /// The user approved the consent page (before the provider login: no subject
    /// yet).
    ConsentGiven {
        client_id: &'a str,
        resource: &'a str,
    },
    /// The user denied the consent page.
    ConsentDenied {
        client_id: &'a str,
        resource: &'a str,
    },
    /// The provider's callback completed a login: a grant exists for the subject.
    LoginCompleted {
        client_id: &'a str,
        subject: &'a str,
        resource: &'a str,
    },
    /// The token endpoint issued an access token.
    TokenIssued {
        grant_type: &'a str,
        client_id: &'a str,
        subject: &'a str,
        resource: &'a str,
        scopes: &'a str,
    },
    /// A refresh token was redeemed and replaced (RFC 9700 §4.14.2 rotation).
    RefreshRotated {
        client_id: &'a str,
        subject: &'a str,
    },
    /// A rotated refresh token was presented again: the grant is revoked.
    RefreshReuse {
        client_id: &'a str,
        subject: &'a str,
    },
    /// A token exchange (RFC 8693) handed a token for `audience`.
    ExchangePerformed {
        client_id: &'a str,
        subject: &'a str,
        audience: &'a str,
    },
    /// A token exchange was refused: `reason` is `invalid_request`,
    /// `invalid_target`, `invalid_scope`, `provider_refused`, `grant_unusable` or
    /// `store_unavailable`.
    ExchangeRefused {
        client_id: &'a str,
        audience: &'a str,
        reason: &'a str,
    },
    /// A client revoked a token (RFC 7009).
    TokenRevoked { client_id: &'a str },
    /// An operator acted through the admin API: `caller` is its address, `action`
    /// what it did, on which `target` (written as `grant_id`, `client_id` or
    /// `subject`), `count` how many grants it revoked.
    AdminAction {
        caller: &'a str,
        action: &'a str,
        target: AdminTarget<'a>,
        count: u64,
    },
    /// A request refused by a rate limit (labels from configuration only).
    RateLimited {
        resource: &'a str,
        key_kind: &'a str,
        rule: &'a str,
    },
    /// A request refused for its client address (`list`: `deny` or `allow`).
    AddressRefused { target: &'a str, list: &'a str },
    /// A request to a protected resource (forward-auth, the gateway, the broker's own
    /// routes) refused for its token: `reason` is the refusal's (`missing_token`,
    /// `expired`, `bad_signature`, `revoked`, `insufficient_scope`, …).
    TokenRefused { resource: &'a str, reason: &'a str },
    /// A client registration removed by the broker itself: `reason` `unused` (never
    /// used within `registration.unused_client_ttl`) or `idle` (not used within
    /// `registration.idle_client_ttl`); its provider registration deleted first
    /// (RFC 7592) in proxy mode.
    ClientRemoved { client_id: &'a str, reason: &'a str },
    /// A login (`stage = "login"`), a refresh (`"refresh"`) or a request (`"request"`) refused by the
    /// resource's allow rule (`[resources.allow]`); `condition` is the first one unmet
    /// (`groups_any`, `groups_all`, `email_domains`, `subjects`).
    AccessDenied {
        client_id: &'a str,
        subject: &'a str,
        resource: &'a str,
        condition: &'a str,
        stage: &'a str,
    },
}

/// What an admin action was applied to.
#[derive(Debug, Clone, Copy)]
pub enum AdminTarget<'a> {
    Grant(&'a str),
    Client(&'a str),
    Subject(&'a str),
    /// Every cache entry (`{"all": true}`).
    All,
    /// A caller's rate-limit budgets on a resource (`key_kind`: what the caller was
    /// named by).
    Budget {
        resource: &'a str,
        key_kind: &'a str,
    },
}

/// Every event name, in the order of [`AuditEvent::index`]: the metric's label values.
const NAMES: [&str; 17] = [
    "client_registered",
    "client_deleted",
    "consent_given",
    "consent_denied",
    "login_completed",
    "token_issued",
    "refresh_rotated",
    "refresh_reuse",
    "exchange_performed",
    "exchange_refused",
    "token_revoked",
    "admin_action",
    "rate_limited",
    "address_refused",
    "token_refused",
    "client_removed",
    "access_denied",
];

impl AuditEvent<'_> {
    fn index(&self) -> usize {
        match self {
            Self::ClientRegistered { .. } => 0,
            Self::ClientDeleted { .. } => 1,
            Self::ConsentGiven { .. } => 2,
            Self::ConsentDenied { .. } => 3,
            Self::LoginCompleted { .. } => 4,
            Self::TokenIssued { .. } => 5,
            Self::RefreshRotated { .. } => 6,
            Self::RefreshReuse { .. } => 7,
            Self::ExchangePerformed { .. } => 8,
            Self::ExchangeRefused { .. } => 9,
            Self::TokenRevoked { .. } => 10,
            Self::AdminAction { .. } => 11,
            Self::RateLimited { .. } => 12,
            Self::AddressRefused { .. } => 13,
            Self::TokenRefused { .. } => 14,
            Self::ClientRemoved { .. } => 15,
            Self::AccessDenied { .. } => 16,
        }
    }

    /// The event's stable name (the `event` field and metric label).
    pub fn name(&self) -> &'static str {
        NAMES[self.index()]
    }
}

/// Writes audit events; shared by every flow through [`super::metrics::Metrics`].
pub struct Audit {
    counters: Vec<IntCounter>,
    subject_key: Option<hmac::Key>,
}

impl Audit {
    pub(super) fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let vec = IntCounterVec::new(
            Opts::new(
                "audit_events_total",
                "Audit events by event name (one per security decision)",
            )
            .namespace("token_broker"),
            &["event"],
        )?;
        registry.register(Box::new(vec.clone()))?;
        let counters = NAMES
            .iter()
            .map(|name| vec.with_label_values(&[name]))
            .collect();
        Ok(Self {
            counters,
            subject_key: None,
        })
    }

    pub(super) fn with_subject_key(mut self, key: Option<&Secret>) -> Self {
        self.subject_key = key.map(|k| hmac::Key::new(hmac::HMAC_SHA256, k.expose().as_bytes()));
        self
    }

    /// Counts the event and, when a subscriber takes target `audit`, writes it.
    pub fn emit(&self, event: AuditEvent<'_>) {
        if let Some(counter) = self.counters.get(event.index()) {
            counter.inc();
        }
        if !tracing::enabled!(target: "audit", tracing::Level::INFO) {
            return;
        }
        let name = event.name();
        match event {
            AuditEvent::ClientRegistered { client_id }
            | AuditEvent::ClientDeleted { client_id } => {
                tracing::info!(target: "audit", event = name, client_id);
            }
            AuditEvent::ConsentGiven {
                client_id,
                resource,
            }
            | AuditEvent::ConsentDenied {
                client_id,
                resource,
            } => {
                tracing::info!(target: "audit", event = name, client_id, resource);
            }
            AuditEvent::RefreshRotated { client_id, subject }
            | AuditEvent::RefreshReuse { client_id, subject } => {
                let subject = self.subject(subject);
                tracing::info!(target: "audit", event = name, client_id, subject = %subject);
            }
            AuditEvent::LoginCompleted {
                client_id,
                subject,
                resource,
            } => {
                let subject = self.subject(subject);
                tracing::info!(target: "audit", event = name, client_id, subject = %subject, resource);
            }
            AuditEvent::TokenIssued {
                grant_type,
                client_id,
                subject,
                resource,
                scopes,
            } => {
                let subject = self.subject(subject);
                tracing::info!(target: "audit", event = name, grant_type, client_id, subject = %subject, resource, scopes);
            }
            AuditEvent::ExchangePerformed {
                client_id,
                subject,
                audience,
            } => {
                let subject = self.subject(subject);
                tracing::info!(target: "audit", event = name, client_id, subject = %subject, audience);
            }
            AuditEvent::ExchangeRefused {
                client_id,
                audience,
                reason,
            } => {
                tracing::info!(target: "audit", event = name, client_id, audience, reason);
            }
            AuditEvent::TokenRevoked { client_id } => {
                tracing::info!(target: "audit", event = name, client_id);
            }
            AuditEvent::AdminAction {
                caller,
                action,
                target,
                count,
            } => match target {
                AdminTarget::Grant(grant_id) => {
                    tracing::info!(target: "audit", event = name, caller, action, grant_id, count);
                }
                AdminTarget::Client(client_id) => {
                    tracing::info!(target: "audit", event = name, caller, action, client_id, count);
                }
                AdminTarget::Subject(subject) => {
                    let subject = self.subject(subject);
                    tracing::info!(target: "audit", event = name, caller, action, subject = %subject, count);
                }
                AdminTarget::All => {
                    tracing::info!(target: "audit", event = name, caller, action, all = true, count);
                }
                AdminTarget::Budget { resource, key_kind } => {
                    tracing::info!(target: "audit", event = name, caller, action, resource, key_kind, count);
                }
            },
            AuditEvent::RateLimited {
                resource,
                key_kind,
                rule,
            } => {
                tracing::info!(target: "audit", event = name, resource, key_kind, rule);
            }
            AuditEvent::AddressRefused { target, list } => {
                tracing::info!(target: "audit", event = name, target, list);
            }
            AuditEvent::TokenRefused { resource, reason } => {
                tracing::info!(target: "audit", event = name, resource, reason);
            }
            AuditEvent::ClientRemoved { client_id, reason } => {
                tracing::info!(target: "audit", event = name, client_id, reason);
            }
            AuditEvent::AccessDenied {
                client_id,
                subject,
                resource,
                condition,
                stage,
            } => {
                let subject = self.subject(subject);
                tracing::info!(target: "audit", event = name, client_id, subject = %subject, resource, condition, stage);
            }
        }
    }

    fn subject<'a>(&'a self, subject: &'a str) -> Subject<'a> {
        Subject {
            key: self.subject_key.as_ref(),
            subject,
        }
    }
}

/// A subject as the trail writes it: itself, or its keyed hash.
struct Subject<'a> {
    key: Option<&'a hmac::Key>,
    subject: &'a str,
}

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.key {
            None => f.write_str(self.subject),
            Some(key) => {
                let tag = hmac::sign(key, self.subject.as_bytes());
                // 32 bytes → 43 base64url characters, on the stack.
                let mut out = [0u8; 44];
                let n = URL_SAFE_NO_PAD
                    .encode_slice(tag.as_ref(), &mut out)
                    .map_err(|_| fmt::Error)?;
                let text =
                    std::str::from_utf8(out.get(..n).ok_or(fmt::Error)?).map_err(|_| fmt::Error)?;
                f.write_str(text)
            }
        }
    }
}

/// The pseudonym `[audit]` writes for `subject` under `key` (tests, operators
/// correlating a subject with the trail).
pub fn pseudonym(key: &str, subject: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes());
    Subject {
        key: Some(&key),
        subject,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonym_is_hmac_sha256_base64url() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            pseudonym("Jefe", "what do ya want for nothing?"),
            "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM"
        );
    }

    #[test]
    fn every_event_has_a_counter() -> Result<(), prometheus::Error> {
        let registry = Registry::new();
        let audit = Audit::new(&registry)?;
        audit.emit(AuditEvent::RateLimited {
            resource: "r",
            key_kind: "client",
            rule: "x",
        });
        assert_eq!(audit.counters.len(), NAMES.len());
        assert_eq!(audit.counters[12].get(), 1);
        Ok(())
    }

    /// The cost of a refusal's event with no subscriber taking `audit` (run with
    /// `--ignored --nocapture`; figures in the README's Audit trail paragraph).
    #[test]
    #[ignore]
    fn cost_of_a_refusal_event_with_audit_output_off() -> Result<(), prometheus::Error> {
        let audit = Audit::new(&Registry::new())?;
        let rounds = 1_000_000u32;
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            audit.emit(AuditEvent::RateLimited {
                resource: "https://mcp.example.com/mcp",
                key_kind: "subject",
                rule: "per-user",
            });
        }
        let each = start.elapsed() / rounds;
        eprintln!("audit event with output off: {each:?} each");
        assert_eq!(audit.counters[12].get(), u64::from(rounds));
        Ok(())
    }
}
