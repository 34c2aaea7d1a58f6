//! Secrets in configuration: written inline, as `env:NAME` or as `file:PATH`, resolved
//! once at load time, and never shown by `Debug` or `Display`.

use std::fmt;
use std::path::Path;

use zeroize::Zeroizing;

use super::Environment;
use crate::domain::constant_time::constant_time_eq;

/// A secret value. Its `Debug` output is redacted so a whole `Config` can be logged,
/// and its memory is wiped when it is dropped.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a value that is already known (tests, generated secrets).
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The secret itself. Call this only where the value leaves the process on
    /// purpose (an HTTP client authenticating upstream), never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Resolves a secret reference as written in the configuration:
    /// `env:NAME` reads the variable, `file:PATH` reads the file (one trailing newline
    /// removed, as editors and `echo` add one), anything else is the secret itself.
    pub fn resolve(spec: &str, env: &Environment) -> Result<Self, String> {
        let value = if let Some(name) = spec.strip_prefix("env:") {
            env.get(name)
                .ok_or_else(|| format!("environment variable {name} is not set"))?
                .to_owned()
        } else if let Some(path) = spec.strip_prefix("file:") {
            read_secret_file(Path::new(path))?
        } else {
            spec.to_owned()
        };
        if value.is_empty() {
            return Err("the secret is empty".to_owned());
        }
        Ok(Self::new(value))
    }
}

fn read_secret_file(path: &Path) -> Result<String, String> {
    let mut text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl PartialEq for Secret {
    /// Constant-time comparison, so comparing a presented secret leaks no prefix length.
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Eq for Secret {}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Environment {
        Environment::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn debug_output_never_contains_the_value() {
        let secret = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert!(!format!("{:?}", Some(&secret)).contains("hunter2"));
    }

    #[test]
    fn inline_env_and_file_references_resolve() {
        let env = env(&[("MY_SECRET", "from-env")]);
        assert_eq!(Secret::resolve("plain", &env).unwrap().expose(), "plain");
        assert_eq!(
            Secret::resolve("env:MY_SECRET", &env).unwrap().expose(),
            "from-env"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "from-file\n").unwrap();
        let spec = format!("file:{}", path.display());
        assert_eq!(Secret::resolve(&spec, &env).unwrap().expose(), "from-file");
    }

    #[test]
    fn missing_sources_and_empty_values_are_errors() {
        let env = env(&[("EMPTY", "")]);
        assert!(
            Secret::resolve("env:NOPE", &env)
                .unwrap_err()
                .contains("NOPE is not set")
        );
        assert!(
            Secret::resolve("file:/nonexistent/secret", &env)
                .unwrap_err()
                .contains("cannot read")
        );
        assert!(Secret::resolve("env:EMPTY", &env).is_err());
    }

    #[test]
    fn equality_is_by_value() {
        assert_eq!(Secret::new("a"), Secret::new("a"));
        assert_ne!(Secret::new("a"), Secret::new("b"));
        assert_ne!(Secret::new("a"), Secret::new("ab"));
    }
}
