//! Scope strings (RFC 6749 §3.3): space-delimited, order-insensitive sets.

use std::collections::BTreeSet;

/// A set of scope tokens, kept sorted so equal sets print alike.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scopes(BTreeSet<String>);

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
            set.insert(token.to_owned());
        }
        Ok(Self(set))
    }

    pub fn of<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Self {
        Self(items.into_iter().map(Into::into).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The tokens of `self` not in `other`.
    pub fn missing_from(&self, other: &Scopes) -> Scopes {
        Self(self.0.difference(&other.0).cloned().collect())
    }

    pub fn union(&self, other: &Scopes) -> Scopes {
        Self(self.0.union(&other.0).cloned().collect())
    }

    pub fn intersection(&self, other: &Scopes) -> Scopes {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, scope) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope)?;
        }
        Ok(())
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
}
