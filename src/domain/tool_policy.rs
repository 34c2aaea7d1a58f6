//! Per-tool authorization for an MCP server, from configuration alone: which scopes a
//! tool needs on top of the resource's, which tools anyone may call without a token,
//! and which tools a client or an API key is limited to. Shared by MCP-aware
//! forward-auth (`Mcp-Method` / `Mcp-Name` headers) and the gateway (the JSON-RPC body).

use super::scope::Scopes;

/// A tool name or pattern as configured: `notes_write` (exactly), `get_*` (a prefix),
/// `*` (every tool).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolPattern(String);

impl ToolPattern {
    /// Checks a configured pattern: tool-name characters (MCP: letters, digits, `_`,
    /// `-`, `.`, `/`), with at most one `*`, at the end.
    pub fn parse(text: &str) -> Result<Self, String> {
        let body = text.strip_suffix('*').unwrap_or(text);
        if text.is_empty() || text.len() > 128 {
            return Err(format!("`{text}` must be 1 to 128 characters"));
        }
        if !body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        {
            return Err(format!(
                "`{text}` may hold letters, digits, `_`, `-`, `.`, `/` and one trailing `*`"
            ));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, tool: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => tool.starts_with(prefix),
            None => tool == self.0,
        }
    }

    /// Exact names beat prefixes, longer prefixes beat shorter ones, `*` comes last.
    fn specificity(&self) -> (bool, usize) {
        match self.0.strip_suffix('*') {
            Some(prefix) => (false, prefix.len()),
            None => (true, self.0.len()),
        }
    }
}

/// One `[[resources.tools]]` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolRule {
    pub pattern: ToolPattern,
    /// Needed on top of the resource's `required_scopes`.
    pub scopes: Scopes,
    /// Callable by any caller without further scopes or allow-lists; without a token
    /// (and listed to anyone) only on a resource with `anonymous = "public-tools"`.
    pub public: bool,
}

/// The rules of one resource, and the clients limited to some tools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolPolicy {
    pub rules: Vec<ToolRule>,
    /// `[[resources.clients]]`: client id → the tools it may use.
    pub clients: Vec<(String, Vec<ToolPattern>)>,
    /// `[[resources]] anonymous`: whether requests without a token pass at all.
    pub anonymous: Anonymous,
}

/// `[[resources]] anonymous`: what a request without a token may do.
///
/// `None` by default: every tokenless request, `initialize` included, gets the 401
/// that starts a login. An MCP client whose handshake passes anonymously sends its
/// next requests (the `GET` stream, `tools/list`) at once, gets a 401 for each and
/// starts a login per 401; scanners that see `initialize` answered 200 report the
/// server as unprotected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Anonymous {
    #[default]
    None,
    /// `public-tools`: the handshake, notifications and public tools pass without a
    /// token; a tokenless `GET` stream or `DELETE` is refused with 405 (not 401), so
    /// that only one request of a connecting client asks it to log in.
    PublicTools,
}

impl Anonymous {
    /// The configured spelling.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "none" => Ok(Self::None),
            "public-tools" => Ok(Self::PublicTools),
            other => Err(format!("`{other}` is not one of none, public-tools")),
        }
    }
}

/// Who asks, as far as tools are concerned.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub scopes: &'a Scopes,
    pub client_id: Option<&'a str>,
    /// An API key's own allow-list (`[[api_keys]] tools`).
    pub tools: Option<&'a [ToolPattern]>,
}

/// The verdict on one tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolDecision {
    Allowed,
    /// A token is needed (401 with the resource's challenge).
    Unauthenticated,
    /// 403 `insufficient_scope`: `needed` is what the call takes, `missing` what the
    /// caller lacks of it.
    MissingScopes {
        needed: Scopes,
        missing: Scopes,
    },
    /// 403 `access_denied`: outside the client's or key's allow-list.
    NotAllowed,
}

/// MCP methods anyone may send to a resource with public tools: the handshake,
/// keep-alives and notifications, so a public tool can be called. Not `tools/list`:
/// an MCP client that listed only the public tools would never learn that logging
/// in shows more, so listing asks for a token (and starts the client's login).
pub fn anonymous_method(method: &str) -> bool {
    matches!(method, "initialize" | "ping") || method.starts_with("notifications/")
}

impl ToolPolicy {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.clients.is_empty()
    }

    /// The most specific rule for `tool`.
    pub fn rule(&self, tool: &str) -> Option<&ToolRule> {
        self.rules
            .iter()
            .filter(|r| r.pattern.matches(tool))
            .max_by_key(|r| r.pattern.specificity())
    }

    /// Whether any rule marks a tool public.
    pub fn has_public(&self) -> bool {
        self.rules.iter().any(|r| r.public)
    }

    /// Whether requests without a token may pass at all: only when the operator
    /// chose `anonymous = "public-tools"` and some tool is public.
    pub fn anonymous_open(&self) -> bool {
        self.anonymous == Anonymous::PublicTools && self.has_public()
    }

    /// Every scope a rule names (for `scopes_supported`).
    pub fn scopes(&self) -> Scopes {
        self.rules
            .iter()
            .fold(Scopes::default(), |all, r| all.union(&r.scopes))
    }

    /// The scopes a call of `tool` takes: the resource's and its rule's.
    pub fn needed(&self, required: &Scopes, tool: &str) -> Scopes {
        match self.rule(tool) {
            Some(rule) => required.union(&rule.scopes),
            None => required.clone(),
        }
    }

    /// May `caller` (none: no token) call `tool` on a resource requiring `required`?
    pub fn call(&self, required: &Scopes, tool: &str, caller: Option<Caller<'_>>) -> ToolDecision {
        let rule = self.rule(tool);
        // Public: no scopes and no allow-list; without a token only when the resource
        // lets tokenless requests in at all.
        if rule.is_some_and(|r| r.public) && (caller.is_some() || self.anonymous_open()) {
            return ToolDecision::Allowed;
        }
        let Some(caller) = caller else {
            return ToolDecision::Unauthenticated;
        };
        if !self.allowed_for(tool, caller) {
            return ToolDecision::NotAllowed;
        }
        let needed = self.needed(required, tool);
        let missing = needed.missing_from(caller.scopes);
        if missing.is_empty() {
            ToolDecision::Allowed
        } else {
            ToolDecision::MissingScopes { needed, missing }
        }
    }

    /// What every call of the resource together needs: its own scopes and every rule's.
    /// A request whose tool cannot be seen could be any call, so this is what it takes.
    pub fn strictest(&self, required: &Scopes) -> Scopes {
        required.union(&self.scopes())
    }

    /// May `caller` send a request that could be a call of any tool (forward-auth cannot
    /// read the body, and the headers naming the call are missing or cannot be relied
    /// on)? Only if it could call every tool: no allow-list that leaves one out (an
    /// allow-list naming `*` leaves none out), and the [`strictest`](Self::strictest)
    /// scopes. An allow-list is refused first: no step-up would help.
    pub fn any_call(&self, required: &Scopes, caller: Caller<'_>) -> ToolDecision {
        if !self.allows_every_tool(caller) {
            return ToolDecision::NotAllowed;
        }
        // The usual case, decided without building a set: the caller holds them all.
        let holds = |scopes: &Scopes| scopes.is_subset(caller.scopes);
        if holds(required) && self.rules.iter().all(|rule| holds(&rule.scopes)) {
            return ToolDecision::Allowed;
        }
        let needed = self.strictest(required);
        let missing = needed.missing_from(caller.scopes);
        if missing.is_empty() {
            ToolDecision::Allowed
        } else {
            ToolDecision::MissingScopes { needed, missing }
        }
    }

    /// Whether `tools/list` shows `tool` to `caller`: exactly the tools it could call.
    pub fn visible(&self, required: &Scopes, tool: &str, caller: Option<Caller<'_>>) -> bool {
        self.call(required, tool, caller) == ToolDecision::Allowed
    }

    /// The client's and the key's allow-lists (each only when it has one).
    fn allowed_for(&self, tool: &str, caller: Caller<'_>) -> bool {
        let by_key = caller
            .tools
            .is_none_or(|list| list.iter().any(|p| p.matches(tool)));
        let by_client = caller
            .client_id
            .and_then(|id| self.clients.iter().find(|(c, _)| c == id))
            .is_none_or(|(_, list)| list.iter().any(|p| p.matches(tool)));
        by_key && by_client
    }

    /// Neither the key's nor the client's allow-list (when there is one) leaves a tool out.
    fn allows_every_tool(&self, caller: Caller<'_>) -> bool {
        let everything = |list: &[ToolPattern]| list.iter().any(|p| p.as_str() == "*");
        let by_key = caller.tools.is_none_or(everything);
        let by_client = caller
            .client_id
            .and_then(|id| self.clients.iter().find(|(c, _)| c == id))
            .is_none_or(|(_, list)| everything(list));
        by_key && by_client
    }

    /// A label for metrics: the matched rule's pattern, never the (client-chosen) name.
    pub fn label(&self, tool: &str) -> &str {
        self.rule(tool).map_or("(no rule)", |r| r.pattern.as_str())
    }
}

#[cfg(test)]
mod tests;
