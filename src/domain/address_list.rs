//! Address lists: which client addresses may reach a protected resource or the OAuth
//! endpoints at all. A deny list and an optional allow list of CIDR blocks; the deny
//! list wins (an address on both is refused), and with an allow list present only the
//! addresses on it pass. Judged before anything else of a request is read.

use std::net::IpAddr;

use ipnet::IpNet;

/// A deny list and, optionally, an allow list (`None`: every address not denied).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressList {
    allow: Option<Vec<IpNet>>,
    deny: Vec<IpNet>,
}

/// The verdict on one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Admitted,
    /// On the deny list.
    Denied,
    /// Not on the allow list.
    NotAllowed,
}

impl Verdict {
    /// The list that refused (the metric's `list` label), `None` when admitted.
    pub fn list(self) -> Option<&'static str> {
        match self {
            Self::Admitted => None,
            Self::Denied => Some("deny"),
            Self::NotAllowed => Some("allow"),
        }
    }
}

impl AddressList {
    /// A list as configured; [`AddressList::problems`] says what makes no sense in it.
    pub fn new(allow: Option<Vec<IpNet>>, deny: Vec<IpNet>) -> Self {
        Self { allow, deny }
    }

    /// No list at all: every address passes, and none needs to be worked out.
    pub fn is_open(&self) -> bool {
        self.allow.is_none() && self.deny.is_empty()
    }

    /// Judges `ip` (an IPv4-mapped IPv6 address as the IPv4 address it stands for).
    pub fn judge(&self, ip: IpAddr) -> Verdict {
        let ip = ip.to_canonical();
        if self.deny.iter().any(|net| net.contains(&ip)) {
            return Verdict::Denied;
        }
        match &self.allow {
            Some(allow) if !allow.iter().any(|net| net.contains(&ip)) => Verdict::NotAllowed,
            _ => Verdict::Admitted,
        }
    }

    /// What an operator surely did not mean: an allow list that is present but empty
    /// (it would refuse everyone), and an allow entry wholly inside a deny entry (it
    /// can never admit anyone, since the deny list wins).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let Some(allow) = &self.allow else {
            return problems;
        };
        if allow.is_empty() {
            problems.push(
                "an empty allow list refuses every address; remove `allow` to admit all that are not denied".to_owned(),
            );
        }
        for net in allow {
            if let Some(deny) = self.deny.iter().find(|deny| deny.contains(net)) {
                problems.push(format!(
                    "allow entry `{net}` lies inside deny entry `{deny}`: the deny list wins, so it admits no one"
                ));
            }
        }
        problems
    }
}

/// A CIDR block (`10.0.0.0/8`) or a single address (`203.0.113.7`, a /32 or /128).
/// Host bits after the prefix are refused (`10.0.0.1/8`: which was meant?).
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(ip.to_canonical()));
    }
    let net = text
        .parse::<IpNet>()
        .map_err(|_| format!("`{text}` is not an IP address or CIDR such as 10.0.0.0/8"))?;
    if net.trunc() != net {
        return Err(format!(
            "`{text}` has bits set past its prefix; write `{}`",
            net.trunc()
        ));
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| parse_net(n).unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_deny_list_wins_over_the_allow_list() {
        let list = AddressList::new(Some(nets(&["10.0.0.0/8"])), nets(&["10.1.0.0/16"]));
        assert_eq!(list.judge(ip("10.2.3.4")), Verdict::Admitted);
        assert_eq!(list.judge(ip("10.1.3.4")), Verdict::Denied);
        assert_eq!(list.judge(ip("192.0.2.1")), Verdict::NotAllowed);
        assert_eq!(list.judge(ip("::ffff:10.1.3.4")), Verdict::Denied);
        assert_eq!(list.judge(ip("::ffff:10.2.3.4")), Verdict::Admitted);
        assert!(list.problems().is_empty());
    }

    #[test]
    fn without_an_allow_list_everything_not_denied_passes() {
        let list = AddressList::new(None, nets(&["203.0.113.7", "2001:db8::/32"]));
        assert_eq!(list.judge(ip("203.0.113.7")), Verdict::Denied);
        assert_eq!(list.judge(ip("203.0.113.8")), Verdict::Admitted);
        assert_eq!(list.judge(ip("2001:db8::1")), Verdict::Denied);
        assert!(!list.is_open());
        assert!(AddressList::default().is_open());
        assert_eq!(AddressList::default().judge(ip("::1")), Verdict::Admitted);
    }

    #[test]
    fn nonsense_lists_are_named() {
        let empty = AddressList::new(Some(vec![]), vec![]);
        assert!(empty.problems()[0].contains("empty allow list"));
        let dead = AddressList::new(
            Some(nets(&["10.1.2.0/24", "192.0.2.0/24"])),
            nets(&["10.0.0.0/8"]),
        );
        let problems = dead.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("`10.1.2.0/24` lies inside deny entry `10.0.0.0/8`"));
        assert!(parse_net("10.0.0.1/8").unwrap_err().contains("10.0.0.0/8"));
        assert!(parse_net("10.0.0/8").is_err());
        assert_eq!(
            parse_net("::ffff:192.0.2.1").unwrap(),
            nets(&["192.0.2.1/32"])[0]
        );
    }
}
