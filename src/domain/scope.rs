//! Scope strings (RFC 6749 §3.3): space-delimited, order-insensitive sets.

use std::cmp::Ordering;
use std::collections::BTreeSet;

/// A set of scope tokens, kept sorted so equal sets print alike.
///
/// Held as its canonical text — the tokens sorted, without repeats, one space between
/// them — in one allocation of exactly that size (none when empty): every login
/// session, grant, refresh token, verified token and cached exchange carries one, and
/// a `BTreeSet<String>` cost a 288-byte tree node plus a string per token (the scale
/// bench, benches/README.md). Scope tokens never contain a space (§3.3), and a space
/// sorts before every character a token may hold, so ordering the text orders the sets
/// as their token sequences.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scopes(Box<str>);

impl Scopes {
    /// Parses a `scope` parameter. Tokens must be printable ASCII without `"` or `\`
    /// (RFC 6749 §3.3); an invalid token makes the whole parameter invalid.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for token in text.split(' ').filter(|t| !t.is_empty()) {
            let valid = token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
            if !valid {
                return Err(format!("invalid scope token `{token}`"));
            }
            set.insert(token);
        }
        Ok(Self::from_sorted(set))
    }

    /// The set of `items`; an item holding spaces stands for the tokens between them.
    pub fn of<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Self {
        let items: Vec<String> = items.into_iter().map(Into::into).collect();
        Self::from_sorted(
            items
                .iter()
                .flat_map(|item| item.split(' '))
                .filter(|t| !t.is_empty())
                .collect(),
        )
    }

    fn from_sorted(set: BTreeSet<&str>) -> Self {
        let mut text = String::with_capacity(set.iter().map(|t| t.len() + 1).sum());
        for token in set {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(token);
        }
        Self(text.into_boxed_str())
    }

    /// The set of `tokens`, which come sorted and without repeats: joined as they are,
    /// with no set built in between (the access checks call these on every request).
    /// `room` bounds the text's length.
    fn joined<'a>(tokens: impl Iterator<Item = &'a str>, room: usize) -> Self {
        let mut text = String::with_capacity(room);
        for token in tokens {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(token);
        }
        Self(text.into_boxed_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.iter().any(|t| t == scope)
    }

    /// Both sides sorted: one walk.
    pub fn is_subset(&self, other: &Scopes) -> bool {
        let mut theirs = other.iter();
        'mine: for token in self.iter() {
            for candidate in theirs.by_ref() {
                match candidate.cmp(token) {
                    Ordering::Less => continue,
                    Ordering::Equal => continue 'mine,
                    Ordering::Greater => return false,
                }
            }
            return false;
        }
        true
    }

    /// The tokens of `self` not in `other` (nothing allocated when there are none).
    pub fn missing_from(&self, other: &Scopes) -> Scopes {
        if self.is_subset(other) {
            return Scopes::default();
        }
        Self::joined(self.iter().filter(|t| !other.contains(t)), self.0.len())
    }

    /// Both sides sorted: one merging walk.
    pub fn union(&self, other: &Scopes) -> Scopes {
        if other.is_subset(self) {
            return self.clone();
        }
        if self.is_subset(other) {
            return other.clone();
        }
        let merged = Merged {
            a: self.iter().peekable(),
            b: other.iter().peekable(),
        };
        Self::joined(merged, self.0.len() + 1 + other.0.len())
    }

    pub fn intersection(&self, other: &Scopes) -> Scopes {
        Self::joined(self.iter().filter(|t| other.contains(t)), self.0.len())
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.split(' ').filter(|t| !t.is_empty())
    }
}

/// Two sorted token sequences without repeats, merged into one.
struct Merged<A: Iterator, B: Iterator> {
    a: std::iter::Peekable<A>,
    b: std::iter::Peekable<B>,
}

impl<'s, A, B> Iterator for Merged<A, B>
where
    A: Iterator<Item = &'s str>,
    B: Iterator<Item = &'s str>,
{
    type Item = &'s str;

    fn next(&mut self) -> Option<&'s str> {
        match (self.a.peek(), self.b.peek()) {
            (Some(a), Some(b)) => match a.cmp(b) {
                Ordering::Less => self.a.next(),
                Ordering::Greater => self.b.next(),
                Ordering::Equal => {
                    self.b.next();
                    self.a.next()
                }
            },
            (Some(_), None) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_is_order_and_space_insensitive() {
        let a = Scopes::parse("openid  notes:read profile").unwrap();
        let b = Scopes::parse("profile openid notes:read").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "notes:read openid profile");
    }

    #[test]
    fn invalid_tokens_and_set_operations() {
        assert!(Scopes::parse("ok \"quoted\"").is_err());
        let granted = Scopes::parse("a b c").unwrap();
        let asked = Scopes::parse("a d").unwrap();
        assert!(!asked.is_subset(&granted));
        assert_eq!(asked.missing_from(&granted).to_string(), "d");
        assert_eq!(asked.intersection(&granted).to_string(), "a");
    }

    #[test]
    fn set_rules_hold_on_the_compact_text() {
        let granted = Scopes::parse("notes:write b a notes:read a").unwrap();
        assert_eq!(granted.to_string(), "a b notes:read notes:write");
        assert_eq!(granted.len(), 4);
        assert!(granted.contains("notes:read") && !granted.contains("notes"));
        assert!(Scopes::parse("notes:read a").unwrap().is_subset(&granted));
        assert!(!Scopes::parse("notes").unwrap().is_subset(&granted));
        assert!(!Scopes::parse("z").unwrap().is_subset(&granted));
        assert!(Scopes::default().is_subset(&granted));
        assert!(!granted.is_subset(&Scopes::default()));
        assert_eq!(
            Scopes::parse("c a")
                .unwrap()
                .union(&Scopes::parse("b a").unwrap()),
            Scopes::parse("a b c").unwrap()
        );
        assert_eq!(Scopes::of(["b a", "a", ""]), Scopes::parse("a b").unwrap());
        assert!(Scopes::parse("  ").unwrap().is_empty());
        assert_eq!(Scopes::default().iter().count(), 0);
        // Ordered as token sequences: "a b" < "ab" as ["a", "b"] < ["ab"].
        assert!(Scopes::parse("a b").unwrap() < Scopes::parse("ab").unwrap());
    }

    /// The merging set operations agree with a `BTreeSet` on every pair of subsets of a
    /// small universe (prefixes and the space-sorting case included).
    #[test]
    fn set_operations_agree_with_btree_sets() {
        let universe = ["a", "ab", "b", "notes:read", "notes:write", "z"];
        let subset = |bits: u32| -> BTreeSet<&str> {
            universe
                .iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, t)| *t)
                .collect()
        };
        let scopes = |set: &BTreeSet<&str>| Scopes::of(set.iter().copied());
        for x in 0..64 {
            for y in 0..64 {
                let (a, b) = (subset(x), subset(y));
                let (sa, sb) = (scopes(&a), scopes(&b));
                let union: BTreeSet<&str> = a.union(&b).copied().collect();
                let missing: BTreeSet<&str> = a.difference(&b).copied().collect();
                let both: BTreeSet<&str> = a.intersection(&b).copied().collect();
                assert_eq!(sa.union(&sb), scopes(&union), "{a:?} | {b:?}");
                assert_eq!(sa.missing_from(&sb), scopes(&missing), "{a:?} - {b:?}");
                assert_eq!(sa.intersection(&sb), scopes(&both), "{a:?} & {b:?}");
                assert_eq!(sa.is_subset(&sb), a.is_subset(&b), "{a:?} <= {b:?}");
            }
        }
    }
}
