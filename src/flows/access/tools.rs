//! The tool rules for a request the resource check let through (or one without a
//! token): public tools on a resource that opted in, per-tool scopes with a step-up
//! challenge, allow-lists. Every refusal is counted per rule, never per
//! (client-chosen) tool name.

use super::denial::Denial;
use super::mcp::{Forwarded, McpCall, caller, needed};
use crate::config::ResourceConfig;
use crate::domain::scope::Scopes;
use crate::domain::tool_policy::{ToolDecision, anonymous_method};
use crate::telemetry::metrics::Metrics;
use crate::tokens::Principal;

/// Whether a request without a token may pass: the resource lets tokenless requests
/// in (`anonymous = "public-tools"`, with public tools) and the call is the handshake,
/// a notification, or a public tool. By default nothing passes: the first request of a
/// connecting client, `initialize`, gets the 401 that starts its one login.
pub(super) fn anonymous_allowed(resource: &ResourceConfig, call: McpCall<'_>) -> bool {
    if !resource.tools.anonymous_open() {
        return false;
    }
    match (call.method, call.tool()) {
        (Some("tools/call"), Some(tool)) => resource.tools.rule(tool).is_some_and(|r| r.public),
        (Some(method), _) => anonymous_method(method),
        (None, _) => false,
    }
}

/// The tool rules for a verified caller at forward-auth: a described call as
/// [`check_call`] judges it; one that cannot be seen only if the caller could make any.
pub(super) fn check_forwarded(
    metrics: &Metrics,
    resource: &ResourceConfig,
    principal: &Principal,
    forwarded: &Forwarded<'_>,
) -> Result<(), Denial> {
    let why = match forwarded {
        Forwarded::Described(call) => return check_call(metrics, resource, principal, *call),
        Forwarded::Unseen(why) => *why,
    };
    let label = "(unseen)";
    match resource
        .tools
        .any_call(&resource.required_scopes, caller(principal))
    {
        ToolDecision::Allowed => Ok(()),
        ToolDecision::MissingScopes { needed, missing } => Err(step_up(
            metrics,
            resource,
            label,
            &needed,
            &missing,
            Some(why),
        )),
        ToolDecision::NotAllowed | ToolDecision::Unauthenticated => {
            metrics.tool_denial(label, "access_denied");
            tracing::info!(why, resource = %resource.uri, "request refused: its call cannot be seen and this caller may not call every tool");
            Err(Denial::access_denied(
                resource,
                format!("{why}, and this client may not call every tool"),
            ))
        }
    }
}

/// The tool rules for a verified caller: `Ok` for anything but a `tools/call` the
/// policy refuses.
pub(super) fn check_call(
    metrics: &Metrics,
    resource: &ResourceConfig,
    principal: &Principal,
    call: McpCall<'_>,
) -> Result<(), Denial> {
    if call.method == Some("tools/call") && call.name.is_none_or(str::is_empty) {
        return Err(denied(
            metrics,
            resource,
            "(no name)",
            "tools/call without a valid Mcp-Name",
        ));
    }
    let Some(tool) = call.tool() else {
        return Ok(());
    };
    let decision = resource
        .tools
        .call(&resource.required_scopes, tool, Some(caller(principal)));
    match decision {
        ToolDecision::Allowed => Ok(()),
        ToolDecision::MissingScopes { needed, missing } => Err(step_up(
            metrics,
            resource,
            resource.tools.label(tool),
            &needed,
            &missing,
            None,
        )),
        ToolDecision::NotAllowed => Err(denied(metrics, resource, tool, "not in the allow-list")),
        // A verified caller is never unauthenticated.
        ToolDecision::Unauthenticated => Err(denied(metrics, resource, tool, "no caller")),
    }
}

/// [`check_call`] for the messages of one body (a batch), judged together: refused
/// outright if one is outside an allow-list, else a step-up naming what all of them
/// need, so one authorization covers the batch (MCP 2026-07-28, "Scope Challenge
/// Handling").
pub(super) fn check_calls<'c>(
    metrics: &Metrics,
    resource: &ResourceConfig,
    principal: &Principal,
    calls: impl Iterator<Item = McpCall<'c>> + Clone,
) -> Result<(), Denial> {
    let mut stepped_up = false;
    for call in calls.clone() {
        match check_call(metrics, resource, principal, call) {
            Ok(()) => {}
            Err(denial) if denial.reason == "insufficient_scope" => stepped_up = true,
            Err(denial) => return Err(denial),
        }
    }
    if !stepped_up {
        return Ok(());
    }
    let needed = calls.fold(resource.required_scopes.clone(), |all, call| {
        all.union(&needed(resource, &Forwarded::Described(call)))
    });
    let description = format!("missing scope: {}", needed.missing_from(&principal.scopes));
    Err(Denial::insufficient_scope(resource, &needed, description))
}

/// 403 `insufficient_scope` for a call the caller lacks `missing` of `needed` for;
/// `why` prefixes the description when the call could not be seen.
fn step_up(
    metrics: &Metrics,
    resource: &ResourceConfig,
    label: &str,
    needed: &Scopes,
    missing: &Scopes,
    why: Option<&str>,
) -> Denial {
    metrics.tool_denial(label, "insufficient_scope");
    tracing::info!(rule = label, %missing, why, resource = %resource.uri, "tool call refused: insufficient scope");
    // `scope` names what the call needs (RFC 6750 §3.1); the description names what
    // was missing. Clients union it with what they hold (MCP 2026-07-28), and one that
    // replaces its scopes still keeps the resource's own.
    let description = match why {
        Some(why) => format!("{why}; missing scope: {missing}"),
        None => format!("missing scope: {missing}"),
    };
    Denial::insufficient_scope(resource, needed, description)
}

fn denied(metrics: &Metrics, resource: &ResourceConfig, tool: &str, why: &str) -> Denial {
    let label = resource.tools.label(tool);
    metrics.tool_denial(label, "access_denied");
    tracing::info!(tool, rule = label, why, resource = %resource.uri, "tool call refused");
    Denial::access_denied(resource, "this client may not call this tool".to_owned())
}
