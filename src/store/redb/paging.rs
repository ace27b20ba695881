//! Paging over redb tables: the ids under one owner in an (owner, id) index, a page of them
//! newest first, a page of whole records from a table keyed by id, and a page of one owner's
//! records (or everyone's).

use redb::ReadableTable;

use super::tables::ID_MAX;
use crate::store::{Owner, Page, PageQuery, Result};

type Bytes = &'static [u8];
type Pair = (&'static str, &'static str);

/// Every second id of an (owner, id) index under `owner`, oldest first.
pub fn index_ids(table: &impl ReadableTable<Pair, ()>, owner: &str) -> Result<Vec<String>> {
    let mut v = Vec::new();
    for row in table.range((owner, "")..(owner, ID_MAX))? {
        v.push(row?.0.value().1.to_owned());
    }
    Ok(v)
}

/// A page of ids, newest first, from the index range of `owner`.
pub fn page_ids(
    table: &impl ReadableTable<Pair, ()>,
    owner: &str,
    before: Option<&str>,
    limit: usize,
) -> Result<(Vec<String>, bool)> {
    let upper = before.unwrap_or(ID_MAX);
    let mut ids = Vec::with_capacity(limit);
    let mut more = false;
    for row in table.range((owner, "")..(owner, upper))?.rev() {
        let (k, _) = row?;
        if ids.len() == limit {
            more = true;
            break;
        }
        ids.push(k.value().1.to_owned());
    }
    Ok((ids, more))
}

/// A page of whole records, newest first, from a table keyed by id.
pub fn page_records<T>(
    table: &impl ReadableTable<&'static str, Bytes>,
    page: PageQuery,
    decode: impl Fn(&str, &[u8]) -> Result<T>,
    id_of: impl Fn(&T) -> String,
) -> Result<Page<T>> {
    let upper = page.before.unwrap_or(ID_MAX);
    let mut data = Vec::with_capacity(page.limit);
    let mut more = false;
    for row in table.range(..upper)?.rev() {
        let (k, v) = row?;
        if data.len() == page.limit {
            more = true;
            break;
        }
        data.push(decode(k.value(), v.value())?);
    }
    let next = more.then(|| data.last().map(&id_of)).flatten();
    Ok(Page { data, next })
}

/// A page of `owner`'s records, newest first: one customer's through its (owner, id) index
/// in `index`, everyone's straight from `records` (keyed by id).
pub fn page_owned<T>(
    index: &impl ReadableTable<Pair, ()>,
    records: &impl ReadableTable<&'static str, Bytes>,
    owner: Owner,
    page: PageQuery,
    decode: impl Fn(&str, &[u8]) -> Result<T>,
    id_of: impl Fn(&T) -> String,
) -> Result<Page<T>> {
    let Owner::Customer(customer) = owner else {
        return page_records(records, page, decode, id_of);
    };
    let (ids, more) = page_ids(index, customer, page.before, page.limit)?;
    let mut data = Vec::with_capacity(ids.len());
    for id in &ids {
        if let Some(v) = records.get(id.as_str())? {
            data.push(decode(id, v.value())?);
        }
    }
    let next = more.then(|| ids.last().cloned()).flatten();
    Ok(Page { data, next })
}
