//! A resource's allow rule (`[resources.allow]`): who may use it, by group, email
//! domain and subject. Each condition the operator wrote must hold (all of them);
//! within a condition:
//!
//! - `groups_any`: the user is in at least one of the groups;
//! - `groups_all`: the user is in every one of the groups;
//! - `email_domains`: the user's email (verified, see `domain::identity`) is at one of
//!   the domains, exactly (case-insensitive; `example.com` does not admit
//!   `sub.example.com`);
//! - `subjects`: the user's `sub` is one of these.
//!
//! Fail closed: a condition on something the provider did not say (no groups claim,
//! no email, or no identity at all — an API key, a client-credentials grant) fails.

use super::identity::Identity;

/// `[resources.allow]`, checked at load: at least one condition, no empty list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowRule {
    pub groups_any: Vec<String>,
    pub groups_all: Vec<String>,
    /// Lower-cased.
    pub email_domains: Vec<String>,
    pub subjects: Vec<String>,
}

/// The first condition the user does not meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmet {
    GroupsAny,
    GroupsAll,
    EmailDomains,
    Subjects,
}

impl Unmet {
    /// The condition's name in the configuration (audit events and logs).
    pub fn condition(self) -> &'static str {
        match self {
            Self::GroupsAny => "groups_any",
            Self::GroupsAll => "groups_all",
            Self::EmailDomains => "email_domains",
            Self::Subjects => "subjects",
        }
    }

    /// What the user is told; never the rule's contents.
    pub fn description(self) -> &'static str {
        match self {
            Self::GroupsAny | Self::GroupsAll => {
                "the user is not in the groups this resource requires"
            }
            Self::EmailDomains => {
                "the user's verified email is not at a domain this resource admits"
            }
            Self::Subjects => "the user is not among those this resource admits",
        }
    }
}

impl AllowRule {
    /// Whether `subject`, with what the provider said of them, may use the resource.
    pub fn judge(&self, subject: &str, identity: Option<&Identity>) -> Result<(), Unmet> {
        let in_group = |g: &String| identity.is_some_and(|i| i.in_group(g));
        if !self.groups_any.is_empty() && !self.groups_any.iter().any(in_group) {
            return Err(Unmet::GroupsAny);
        }
        if !self.groups_all.is_empty() && !self.groups_all.iter().all(in_group) {
            return Err(Unmet::GroupsAll);
        }
        if !self.email_domains.is_empty() {
            let domain = identity.and_then(Identity::email_domain);
            if !domain.is_some_and(|d| self.email_domains.contains(&d)) {
                return Err(Unmet::EmailDomains);
            }
        }
        if !self.subjects.is_empty() && !self.subjects.iter().any(|s| s == subject) {
            return Err(Unmet::Subjects);
        }
        Ok(())
    }

    /// Every group the rule names (kept first when a user's groups are capped).
    pub fn groups(&self) -> impl Iterator<Item = &String> {
        self.groups_any.iter().chain(&self.groups_all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(email: Option<&str>, groups: Option<&[&str]>) -> Identity {
        Identity {
            email: email.map(str::to_owned),
            username: None,
            groups: groups.map(|g| g.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn any_needs_one_group_and_all_needs_every_group() {
        let rule = AllowRule {
            groups_any: list(&["mcp-users", "admins"]),
            groups_all: list(&["staff", "vpn"]),
            ..AllowRule::default()
        };
        let ok = user(None, Some(&["admins", "staff", "vpn"]));
        assert_eq!(rule.judge("s", Some(&ok)), Ok(()));
        let not_any = user(None, Some(&["staff", "vpn"]));
        assert_eq!(rule.judge("s", Some(&not_any)), Err(Unmet::GroupsAny));
        let not_all = user(None, Some(&["mcp-users", "staff"]));
        assert_eq!(rule.judge("s", Some(&not_all)), Err(Unmet::GroupsAll));
    }

    #[test]
    fn no_groups_claim_or_no_identity_fails_a_group_rule() {
        let rule = AllowRule {
            groups_any: list(&["mcp-users"]),
            ..AllowRule::default()
        };
        assert_eq!(
            rule.judge("s", Some(&user(None, None))),
            Err(Unmet::GroupsAny)
        );
        assert_eq!(rule.judge("s", None), Err(Unmet::GroupsAny));
    }

    #[test]
    fn the_email_domain_matches_exactly_without_subdomains() {
        let rule = AllowRule {
            email_domains: list(&["example.com"]),
            ..AllowRule::default()
        };
        let judge = |email: Option<&str>| rule.judge("s", Some(&user(email, None)));
        assert_eq!(judge(Some("a@Example.com")), Ok(()));
        assert_eq!(judge(Some("a@sub.example.com")), Err(Unmet::EmailDomains));
        assert_eq!(judge(Some("a@example.com.evil")), Err(Unmet::EmailDomains));
        assert_eq!(judge(None), Err(Unmet::EmailDomains));
    }

    #[test]
    fn every_condition_must_hold() {
        let rule = AllowRule {
            groups_any: list(&["mcp-users"]),
            email_domains: list(&["example.com"]),
            subjects: list(&["alice"]),
            ..AllowRule::default()
        };
        let alice = user(Some("alice@example.com"), Some(&["mcp-users"]));
        assert_eq!(rule.judge("alice", Some(&alice)), Ok(()));
        assert_eq!(rule.judge("bob", Some(&alice)), Err(Unmet::Subjects));
        let elsewhere = user(Some("alice@other.org"), Some(&["mcp-users"]));
        assert_eq!(
            rule.judge("alice", Some(&elsewhere)),
            Err(Unmet::EmailDomains)
        );
    }

    #[test]
    fn a_subject_rule_admits_callers_without_an_identity() {
        let rule = AllowRule {
            subjects: list(&["service-account"]),
            ..AllowRule::default()
        };
        assert_eq!(rule.judge("service-account", None), Ok(()));
        assert_eq!(rule.judge("other", None), Err(Unmet::Subjects));
    }
}
