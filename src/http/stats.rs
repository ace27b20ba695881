//! Delivery statistics as the API route and the charts read them: which counters a scope
//! sums (every delivery, one customer's endpoints, one endpoint), bucketed over a range.

use crate::domain::stats::{self, Bucket, Counted, Counters};
use crate::store::{Owner, PageQuery, Result, Store};

/// Whose deliveries are counted: what the store keeps (`Counted`), or a customer's, summed
/// over its endpoints.
#[derive(Debug, Clone)]
pub enum Scope {
    All,
    /// The customer's current endpoints (a deleted endpoint's counts go with it).
    Customer(String),
    Endpoint(String),
}

/// Every endpoint id of a customer.
pub fn endpoint_ids(store: &dyn Store, customer_id: &str) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = store.list_endpoints(
            Owner::Customer(customer_id),
            PageQuery {
                before: before.as_deref(),
                limit: 250,
            },
        )?;
        ids.extend(page.data.into_iter().map(|e| e.id));
        match page.next {
            Some(n) => before = Some(n),
            None => return Ok(ids),
        }
    }
}

/// The counters of `scope` in each bucket of [since, until), oldest first (empty buckets
/// included).
pub fn buckets(
    store: &dyn Store,
    scope: &Scope,
    since: i64,
    until: i64,
    bucket: Bucket,
) -> Result<Vec<(i64, Counters)>> {
    let from = stats::minute_of(since);
    let mut minutes = Vec::new();
    match scope {
        Scope::All => minutes = store.minute_counters(Counted::All, from, until)?,
        Scope::Endpoint(id) => {
            minutes = store.minute_counters(Counted::Endpoint(id), from, until)?
        }
        Scope::Customer(c) => {
            for id in endpoint_ids(store, c)? {
                minutes.extend(store.minute_counters(Counted::Endpoint(&id), from, until)?);
            }
        }
    }
    Ok(stats::into_buckets(minutes, since, until, bucket))
}
