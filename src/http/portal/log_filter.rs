//! The delivery log's filters, as both consoles show them: status, event type, a time
//! window, and "find by id" (an event id opens the event, a delivery id shows that one).
//! Read from the page's query string (a GET form), so a filtered log is a link.

use actix_web::HttpRequest;

use super::query_param;
use crate::domain::time::parse_rfc3339;
use crate::domain::{DeliveryFilter, DeliveryStatus, IdKind};
use crate::store::Owner;

#[derive(Debug, Default, Clone)]
pub struct LogFilter {
    pub status: String,
    pub event: String,
    /// `datetime-local` values (UTC), as typed.
    pub since: String,
    pub until: String,
    pub find: String,
    /// What was wrong with the form, shown beside it.
    pub error: Option<String>,
}

/// What "find by id" names.
pub enum Found {
    Event(String),
    Delivery(String),
}

pub const STATUSES: [&str; 5] = ["pending", "sending", "succeeded", "failed", "interrupted"];

/// A `datetime-local` value (`2026-11-27T09:30`, seconds optional) or RFC 3339, as UTC.
pub fn parse_local(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    match raw.len() {
        16 => parse_rfc3339(&format!("{raw}:00Z")),
        19 => parse_rfc3339(&format!("{raw}Z")),
        _ => parse_rfc3339(raw),
    }
}

impl LogFilter {
    pub fn from_request(req: &HttpRequest) -> Self {
        let get = |k: &str| {
            query_param(req, k)
                .map(|v| v.trim().chars().take(64).collect::<String>())
                .unwrap_or_default()
        };
        LogFilter {
            status: get("status"),
            event: get("event"),
            since: get("since"),
            until: get("until"),
            find: get("find"),
            error: None,
        }
    }

    pub fn is_active(&self) -> bool {
        !(self.status.is_empty()
            && self.event.is_empty()
            && self.since.is_empty()
            && self.until.is_empty()
            && self.find.is_empty())
    }

    /// The store's filter for these fields (added to `base`), or why they are not valid.
    pub fn to_filter(&mut self, base: DeliveryFilter) -> Option<DeliveryFilter> {
        let mut f = base;
        if !self.status.is_empty() {
            match DeliveryStatus::parse(&self.status) {
                Some(s) => f.status = Some(s),
                None => return self.fail("Pick a status from the list."),
            }
        }
        if !self.event.is_empty() {
            f.event = Some(self.event.clone());
        }
        let (since, until) = (self.since.clone(), self.until.clone());
        for (raw, slot, name) in [(&since, &mut f.since, "From"), (&until, &mut f.until, "To")] {
            if raw.is_empty() {
                continue;
            }
            match parse_local(raw) {
                Some(t) => *slot = Some(t),
                None => {
                    let msg = format!("{name}: enter a date and time, like 2026-11-27T09:30.");
                    return self.fail(&msg);
                }
            }
        }
        Some(f)
    }

    fn fail<T>(&mut self, msg: &str) -> Option<T> {
        self.error = Some(msg.to_owned());
        None
    }

    /// The id typed into "find", if it has the shape of an event's or a delivery's.
    pub fn found(&mut self) -> Option<Found> {
        let id = self.find.trim().to_owned();
        if id.is_empty() {
            return None;
        }
        if IdKind::Event.matches(&id) {
            Some(Found::Event(id))
        } else if IdKind::Delivery.matches(&id) {
            Some(Found::Delivery(id))
        } else {
            self.error = Some("Find takes an event id (evt_…) or a delivery id (dlv_…).".into());
            None
        }
    }

    /// The filters as a query string to carry on a pager link (`&status=failed…`).
    pub fn query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("status", &self.status),
            ("event", &self.event),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        let q = q.finish();
        if q.is_empty() { q } else { format!("&{q}") }
    }
}

/// What the log shows for a filter: a page of deliveries, or an event to go to.
pub enum LogPage {
    Rows {
        data: Vec<crate::domain::Delivery>,
        next: Option<String>,
    },
    /// "find" named one of the customer's events.
    Event(String),
}

/// Reads the customer's delivery log (within `base`, e.g. one endpoint) as the filter asks.
/// An invalid filter or an id not found shows an empty log with the message in `lf.error`.
pub fn load(
    store: &dyn crate::store::Store,
    customer_id: &str,
    base: DeliveryFilter,
    lf: &mut LogFilter,
    before: Option<&str>,
    limit: usize,
) -> crate::store::Result<LogPage> {
    let empty = LogPage::Rows {
        data: Vec::new(),
        next: None,
    };
    match lf.found() {
        Some(Found::Event(id)) => {
            return Ok(match store.get_event(customer_id, &id)? {
                Some(_) => LogPage::Event(id),
                None => {
                    lf.error = Some(format!("No event {id} here."));
                    empty
                }
            });
        }
        Some(Found::Delivery(id)) => {
            let d = store.get_delivery(customer_id, &id)?;
            if d.is_none() {
                lf.error = Some(format!("No delivery {id} here."));
            }
            return Ok(LogPage::Rows {
                data: d.into_iter().collect(),
                next: None,
            });
        }
        None if lf.error.is_some() => return Ok(empty),
        None => {}
    }
    let Some(filter) = lf.to_filter(base) else {
        return Ok(empty);
    };
    let page = store.list_deliveries(
        Owner::Customer(customer_id),
        &filter,
        crate::store::PageQuery { before, limit },
    )?;
    Ok(LogPage::Rows {
        data: page.data,
        next: page.next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_become_a_store_filter_or_a_message() {
        let mut f = LogFilter {
            status: "failed".into(),
            event: "transactions.fetched".into(),
            since: "2026-11-27T09:30".into(),
            ..Default::default()
        };
        let got = f.to_filter(DeliveryFilter::default()).unwrap();
        assert_eq!(got.status, Some(DeliveryStatus::Failed));
        assert_eq!(got.since, parse_rfc3339("2026-11-27T09:30:00Z"));
        assert_eq!(
            f.query(),
            "&status=failed&event=transactions.fetched&since=2026-11-27T09%3A30"
        );
        let mut bad = LogFilter {
            until: "yesterday".into(),
            ..Default::default()
        };
        assert!(bad.to_filter(DeliveryFilter::default()).is_none());
        assert!(bad.error.unwrap().starts_with("To:"));
        let mut find = LogFilter {
            find: "nope".into(),
            ..Default::default()
        };
        assert!(find.found().is_none() && find.error.is_some());
    }
}
