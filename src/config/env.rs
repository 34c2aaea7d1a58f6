//! Environment-variable overrides: `TOKEN_BROKER__SERVER__LISTEN=…` sets `server.listen`.
//!
//! Overrides are applied to the parsed TOML tree before it is turned into typed
//! structs, so an override goes through exactly the same checks as the file.

use std::collections::BTreeMap;

use toml::{Table, Value};

use super::Problem;

/// The prefix of every override variable; parts of the key path are joined by `__`.
pub const PREFIX: &str = "TOKEN_BROKER__";

/// A snapshot of the process environment, passed in explicitly so that loading is a
/// pure function of its inputs (tests build their own).
#[derive(Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl Environment {
    /// The current process environment. Variables whose name or value is not valid
    /// UTF-8 are skipped: they cannot name a key or hold a TOML value.
    pub fn from_process() -> Self {
        Self::from_pairs(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            vars: pairs.into_iter().collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Applies every `TOKEN_BROKER__…` variable to `root`. Values are strings, except
    /// that a value starting with `[` is read as a TOML array (`["a", "b"]`); typed
    /// fields accept numbers and booleans written as strings, so no guessing is needed.
    pub fn apply_overrides(&self, root: &mut Table, problems: &mut Vec<Problem>) {
        for (name, value) in self.vars.range(PREFIX.to_owned()..) {
            let Some(path) = name.strip_prefix(PREFIX) else {
                break;
            };
            let parts: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
            let key = parts.join(".");
            if parts.len() < 2 || parts.iter().any(String::is_empty) {
                problems.push(Problem::new(
                    key,
                    format!("environment variable {name} must name a key as SECTION__KEY"),
                ));
                continue;
            }
            match parse_value(value) {
                Ok(value) => {
                    if let Err(message) = set_path(root, &parts, value) {
                        problems.push(Problem::new(key, format!("{name}: {message}")));
                    }
                }
                Err(message) => problems.push(Problem::new(key, format!("{name}: {message}"))),
            }
        }
    }
}

fn parse_value(raw: &str) -> Result<Value, String> {
    if !raw.trim_start().starts_with('[') {
        return Ok(Value::String(raw.to_owned()));
    }
    let doc: Table = toml::from_str(&format!("v = {raw}"))
        .map_err(|_| "value starts with '[' but is not a TOML array".to_owned())?;
    doc.get("v")
        .cloned()
        .ok_or_else(|| "value is not a TOML array".to_owned())
}

/// Sets `parts` in `root`, creating tables on the way. A numeric part indexes an
/// existing array of tables (`GATEWAY__0__PATH`).
fn set_path(root: &mut Table, parts: &[String], value: Value) -> Result<(), String> {
    let Some((first, rest)) = parts.split_first() else {
        return Err("empty key".to_owned());
    };
    let Some((last, middle)) = rest.split_last() else {
        root.insert(first.clone(), value);
        return Ok(());
    };
    let mut node = root
        .entry(first.clone())
        .or_insert_with(|| Value::Table(Table::new()));
    for part in middle {
        node = child(node, part)?;
    }
    match node {
        Value::Table(table) => {
            table.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = array_index(last, items.len())?;
            items[index] = value;
            Ok(())
        }
        _ => Err(format!("cannot set `{last}`: its parent is not a table")),
    }
}

fn child<'a>(node: &'a mut Value, part: &str) -> Result<&'a mut Value, String> {
    match node {
        Value::Table(table) => Ok(table
            .entry(part.to_owned())
            .or_insert_with(|| Value::Table(Table::new()))),
        Value::Array(items) => {
            let index = array_index(part, items.len())?;
            Ok(&mut items[index])
        }
        _ => Err(format!(
            "cannot descend into `{part}`: its parent is not a table"
        )),
    }
}

fn array_index(part: &str, len: usize) -> Result<usize, String> {
    match part.parse::<usize>() {
        Ok(index) if index < len => Ok(index),
        Ok(index) => Err(format!("index {index} is past the end of a list of {len}")),
        Err(_) => Err(format!("`{part}` must be a list index")),
    }
}
