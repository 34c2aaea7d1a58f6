//! What the operator's API lists: clients, grants and login sessions a page at a time,
//! in id order, after a cursor (the last id of the previous page). Keyset paging, so a
//! cursor stays valid while rows are added or removed: a row that exists throughout a
//! walk is seen exactly once; one added behind the cursor is not seen by that walk.

use crate::clock::UnixSeconds;
use crate::domain::scope::Scopes;
use crate::store::Grant;

/// Rows per page when the caller names none.
pub const DEFAULT_PAGE: usize = 50;
/// The most rows one page may hold.
pub const MAX_PAGE: usize = 500;

/// One page's request: rows whose id sorts after `after`, at most `limit` of them
/// (clamped to 1..=[`MAX_PAGE`] by every backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub after: Option<String>,
    pub limit: usize,
}

impl Page {
    /// The first page of `limit` rows.
    pub fn first(limit: usize) -> Self {
        Self { after: None, limit }
    }

    /// The limit within bounds.
    pub fn size(&self) -> usize {
        self.limit.clamp(1, MAX_PAGE)
    }

    /// Whether `id` belongs after the cursor.
    pub fn admits(&self, id: &str) -> bool {
        self.after.as_deref().is_none_or(|after| id > after)
    }

    /// A page out of rows in id order, at most one more than the page holds: the
    /// extra row only says that more follow.
    pub fn cut<T>(&self, mut rows: Vec<T>, id: impl Fn(&T) -> &str) -> Listing<T> {
        let size = self.size();
        let next = if rows.len() > size {
            rows.truncate(size);
            rows.last().map(|row| id(row).to_owned())
        } else {
            None
        };
        Listing { items: rows, next }
    }
}

impl Default for Page {
    fn default() -> Self {
        Self::first(DEFAULT_PAGE)
    }
}

/// One page of rows, and the cursor of the next when more follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing<T> {
    pub items: Vec<T>,
    /// The last id of this page, when another page follows.
    pub next: Option<String>,
}

/// Which grants to list: each field given must match exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantFilter {
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub resource: Option<String>,
}

impl GrantFilter {
    pub fn matches(&self, grant: &Grant) -> bool {
        let is = |wanted: &Option<String>, value: Option<&str>| {
            wanted.as_deref().is_none_or(|w| Some(w) == value)
        };
        is(&self.subject, Some(&grant.subject))
            && is(&self.client_id, Some(&grant.client_id))
            && is(&self.resource, grant.resource.as_deref())
    }
}

/// A grant as listed: the record and when it was last refreshed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    pub grant: Grant,
    /// The latest rotation of its refresh tokens still kept (spent tokens are kept
    /// until they expire); `None` when never refreshed, or not within that time.
    pub last_refreshed_at: Option<UnixSeconds>,
}

/// Which login sessions to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    pub client_id: Option<String>,
    pub resource: Option<String>,
}

/// A login in progress, as listed: no secret (not its id, not its CSRF token or the
/// leg's verifier), only the hash it is stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Lower-case hex SHA-256 of the session id: the stored key, useless to a caller.
    pub id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Scopes,
    pub resource: Option<String>,
    pub expires_at: UnixSeconds,
    /// The user approved it on the consent page; the provider leg is under way.
    pub approved: bool,
}

impl SessionFilter {
    pub fn matches(&self, row: &SessionRow) -> bool {
        self.client_id.as_deref().is_none_or(|c| c == row.client_id)
            && self
                .resource
                .as_deref()
                .is_none_or(|r| Some(r) == row.resource.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_says_whether_more_follow() {
        let page = Page::first(2);
        let full = page.cut(vec!["a", "b", "c"], |s| s);
        assert_eq!(full.items, ["a", "b"]);
        assert_eq!(full.next.as_deref(), Some("b"));
        let last = page.cut(vec!["a", "b"], |s| s);
        assert_eq!(last.next, None);
        assert_eq!(Page::first(0).size(), 1);
        assert_eq!(Page::first(10_000).size(), MAX_PAGE);
        let after = Page {
            after: Some("b".into()),
            limit: 5,
        };
        assert!(!after.admits("a") && !after.admits("b") && after.admits("c"));
    }
}
