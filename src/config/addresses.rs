//! Address lists (`[server.oauth_addresses]`, `[resources.addresses]`): `deny` and
//! `allow`, each a list of CIDR blocks or single addresses, judged by
//! `domain::address_list` on the client IP (`server.trusted_proxies` decides whose
//! `X-Forwarded-For` counts). The deny list wins; an allow list that is present but
//! empty, an entry that is not a CIDR (or has bits past its prefix), and an allow
//! entry the deny list swallows whole are start-up errors.

use super::Problem;
use super::raw::RawAddresses;
use crate::domain::address_list::{AddressList, parse_net};

/// Checks one address-list table, whose keys are named under `at`
/// (`server.oauth_addresses`, `resources[0].addresses`); absent means open.
pub(super) fn addresses(
    raw: Option<RawAddresses>,
    at: &str,
    problems: &mut Vec<Problem>,
) -> Option<AddressList> {
    let Some(raw) = raw else {
        return Some(AddressList::default());
    };
    let before = problems.len();
    let mut nets = |field: &str, list: Vec<String>| {
        let mut out = Vec::with_capacity(list.len());
        for (i, text) in list.iter().enumerate() {
            match parse_net(text) {
                Ok(net) => out.push(net),
                Err(message) => problems.push(Problem::new(format!("{at}.{field}[{i}]"), message)),
            }
        }
        out
    };
    let allow = raw.allow.map(|list| nets("allow", list));
    let deny = nets("deny", raw.deny.unwrap_or_default());
    let list = AddressList::new(allow, deny);
    for message in list.problems() {
        problems.push(Problem::new(at, message));
    }
    (problems.len() == before).then_some(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(allow: Option<&[&str]>, deny: &[&str]) -> Result<AddressList, String> {
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        let raw = RawAddresses {
            allow: allow.map(owned),
            deny: Some(owned(deny)),
        };
        let mut problems = Vec::new();
        addresses(Some(raw), "resources[0].addresses", &mut problems).ok_or_else(|| {
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    #[test]
    fn every_bad_entry_is_named_by_its_key() {
        let problems = check(
            Some(&["10.0.0.1/8", "10.9.0.0/16"]),
            &["nonsense", "10.0.0.0/8"],
        )
        .unwrap_err();
        for needle in [
            "resources[0].addresses.allow[0]: `10.0.0.1/8` has bits set past its prefix",
            "resources[0].addresses.deny[0]: `nonsense` is not an IP address",
        ] {
            assert!(problems.contains(needle), "{needle} in:\n{problems}");
        }
        let dead = check(Some(&["10.9.0.0/16"]), &["10.0.0.0/8"]).unwrap_err();
        assert!(
            dead.starts_with("resources[0].addresses: allow entry `10.9.0.0/16`"),
            "{dead}"
        );
        let empty = check(Some(&[]), &[]).unwrap_err();
        assert!(empty.contains("empty allow list"), "{empty}");
    }

    #[test]
    fn an_absent_table_is_open_and_a_good_one_loads() {
        let mut problems = Vec::new();
        assert!(addresses(None, "x", &mut problems).unwrap().is_open());
        let list = check(Some(&["10.0.0.0/8"]), &["10.1.0.0/16", "2001:db8::7"]).unwrap();
        assert!(!list.is_open());
    }
}
