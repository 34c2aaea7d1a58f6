//! The admin listing on Redis: grants and clients read in id order from sorted sets
//! kept beside the records (`keys`: `grant_index:*`, `client_index`), all at score 0
//! so `ZRANGEBYLEX` walks them by id from the cursor on. The grant indexes move with
//! the grant in the script that stores it (`put_grant.lua`), go with it in the sweep
//! (which also re-indexes what stays), and a store written before they were kept is
//! backfilled by the first listing (`ensure_indexed`).

use std::sync::atomic::Ordering;

use ::redis::Value;

use super::Inner;
use super::codec::{Fields, corrupt, redis_error};
use super::grants::decode_grant;
use crate::store::{GrantFilter, GrantRow, Listing, Page, StoreError, StoredClient};

/// Ids read from an index per round trip (at least a page and one).
const BATCH: usize = 100;

/// Backfills the indexes once per store: every grant and client that exists is
/// indexed, then the `indexed` mark is set. Idempotent, so replicas doing it at once
/// only repeat each other; what is stored meanwhile indexes itself.
pub async fn ensure_indexed(s: &Inner) -> Result<(), StoreError> {
    if s.indexed.load(Ordering::Acquire) {
        return Ok(());
    }
    let mut conn = s.conn();
    let marked: bool = ::redis::cmd("EXISTS")
        .arg(s.keys.indexed())
        .query_async(&mut conn)
        .await
        .map_err(redis_error)?;
    if !marked {
        let mut cursor: u64 = 0;
        loop {
            let (next, ids): (u64, Vec<String>) = ::redis::cmd("SSCAN")
                .arg(s.keys.grants())
                .arg(cursor)
                .arg("COUNT")
                .arg(BATCH)
                .query_async(&mut conn)
                .await
                .map_err(redis_error)?;
            if !ids.is_empty() {
                let mut call = s.scripts.index_grants.prepare_invoke();
                call.arg(s.keys.prefix());
                for id in &ids {
                    call.arg(id);
                }
                call.invoke_async::<i64>(&mut conn)
                    .await
                    .map_err(redis_error)?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for index in [s.keys.clients_unused(), s.keys.clients_used()] {
            let ids: Vec<String> = ::redis::cmd("ZRANGE")
                .arg(&index)
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .map_err(redis_error)?;
            for chunk in ids.chunks(BATCH) {
                let mut call = s.scripts.index_clients.prepare_invoke();
                call.key(s.keys.client_index()).arg(s.keys.prefix());
                for id in chunk {
                    call.arg(id);
                }
                call.invoke_async::<i64>(&mut conn)
                    .await
                    .map_err(redis_error)?;
            }
        }
        ::redis::cmd("SET")
            .arg(s.keys.indexed())
            .arg("1")
            .query_async::<()>(&mut conn)
            .await
            .map_err(redis_error)?;
    }
    s.indexed.store(true, Ordering::Release);
    Ok(())
}

/// Up to `count` ids of `index` after `after` (exclusive), in id order.
async fn ids_after(
    s: &Inner,
    index: &str,
    after: Option<&str>,
    count: usize,
) -> Result<Vec<String>, StoreError> {
    let start = after.map_or_else(|| "-".to_owned(), |a| format!("({a}"));
    ::redis::cmd("ZRANGEBYLEX")
        .arg(index)
        .arg(start)
        .arg("+")
        .arg("LIMIT")
        .arg(0)
        .arg(count)
        .query_async(&mut s.conn())
        .await
        .map_err(redis_error)
}

/// The ids of an index from a page's cursor on, a batch at a time.
struct IdWalk<'a> {
    index: &'a str,
    after: Option<String>,
    batch: usize,
    done: bool,
}

impl<'a> IdWalk<'a> {
    fn new(index: &'a str, page: &Page) -> Self {
        Self {
            index,
            after: page.after.clone(),
            batch: (page.size() + 1).max(BATCH),
            done: false,
        }
    }

    /// The next batch of ids; `None` once the index is exhausted.
    async fn next(&mut self, s: &Inner) -> Result<Option<Vec<String>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let ids = ids_after(s, self.index, self.after.as_deref(), self.batch).await?;
        self.done = ids.len() < self.batch;
        self.after = ids.last().cloned();
        Ok((!ids.is_empty()).then_some(ids))
    }
}

pub async fn list_grants(
    s: &Inner,
    filter: &GrantFilter,
    page: &Page,
) -> Result<Listing<GrantRow>, StoreError> {
    ensure_indexed(s).await?;
    // The narrowest index the filter names; the rest is checked on each grant.
    let index = match (&filter.subject, &filter.client_id, &filter.resource) {
        (Some(subject), _, _) => s.keys.grant_index("subject", subject),
        (None, Some(client), _) => s.keys.grant_index("client", client),
        (None, None, Some(resource)) => s.keys.grant_index("resource", resource),
        (None, None, None) => s.keys.grants_listed(),
    };
    let want = page.size() + 1;
    let mut rows = Vec::new();
    let mut walk = IdWalk::new(&index, page);
    'walk: while let Some(ids) = walk.next(s).await? {
        for row in read_grants(s, &ids).await?.into_iter().flatten() {
            if filter.matches(&row.grant) {
                rows.push(row);
                if rows.len() == want {
                    break 'walk;
                }
            }
        }
    }
    Ok(page.cut(rows, |r: &GrantRow| &r.grant.grant_id))
}

pub async fn grant_row(s: &Inner, grant_id: &str) -> Result<Option<GrantRow>, StoreError> {
    Ok(read_grants(s, &[grant_id.to_owned()])
        .await?
        .into_iter()
        .next()
        .flatten())
}

/// The grants named (`None` for one that is gone), with their last refresh.
async fn read_grants(s: &Inner, ids: &[String]) -> Result<Vec<Option<GrantRow>>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut call = s.scripts.read_grants.prepare_invoke();
    call.arg(s.keys.prefix());
    for id in ids {
        call.arg(id);
    }
    let reply: Vec<Value> = call
        .invoke_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    if reply.len() != ids.len() {
        return Err(corrupt("read_grants answered a different number of grants"));
    }
    let mut out = Vec::with_capacity(ids.len());
    for (id, value) in ids.iter().zip(reply) {
        let Value::Array(mut pair) = value else {
            return Err(corrupt("read_grants answered a non-array"));
        };
        let (Some(latest), Some(fields)) = (pair.pop(), pair.pop()) else {
            return Err(corrupt("read_grants answered a short pair"));
        };
        let latest = match latest {
            Value::BulkString(bytes) if bytes.is_empty() => None,
            Value::BulkString(bytes) => Some(
                std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| corrupt("rotated_at is not a number"))?,
            ),
            _ => return Err(corrupt("read_grants answered an odd rotation time")),
        };
        out.push(
            decode_grant(&s.sealer, id, Fields::from_value(fields)?)?.map(|grant| GrantRow {
                grant,
                last_refreshed_at: latest,
            }),
        );
    }
    Ok(out)
}

pub async fn list_clients(s: &Inner, page: &Page) -> Result<Listing<StoredClient>, StoreError> {
    ensure_indexed(s).await?;
    let index = s.keys.client_index();
    let want = page.size() + 1;
    let mut rows = Vec::new();
    let mut walk = IdWalk::new(&index, page);
    while rows.len() < want
        && let Some(ids) = walk.next(s).await?
    {
        rows.extend(read_clients(s, &ids).await?.into_iter().flatten());
    }
    rows.truncate(want);
    Ok(page.cut(rows, |c: &StoredClient| &c.client_id))
}

async fn read_clients(s: &Inner, ids: &[String]) -> Result<Vec<Option<StoredClient>>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut reads = ::redis::pipe();
    for id in ids {
        reads.hgetall(s.keys.client(id));
    }
    let values: Vec<Value> = reads
        .query_async(&mut s.conn())
        .await
        .map_err(redis_error)?;
    ids.iter()
        .zip(values)
        .map(|(id, value)| {
            let fields = Fields::from_value(value)?;
            // Deleted since the index was read.
            if fields.is_empty() {
                return Ok(None);
            }
            super::clients::decode(&s.sealer, id, &fields).map(Some)
        })
        .collect()
}
