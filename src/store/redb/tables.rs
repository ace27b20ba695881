//! Every redb table of the data file, and the one list of them that creating, migrating and
//! backing up all use.

use redb::TableDefinition;

/// `schema_version` (u64 LE), `admin_token_sha256`, `queue_pending` and `queue_sending`
/// (i64 LE, kept by the writer in the commit that changes them).
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

pub const CUSTOMERS: TableDefinition<&str, &[u8]> = TableDefinition::new("customers");
/// name -> customer id; names are unique.
pub const CUSTOMER_NAMES: TableDefinition<&str, &str> = TableDefinition::new("customer_names");
/// key id -> API key record (hash, customer, prefix).
pub const API_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");
pub const EVENT_TYPES: TableDefinition<&str, &[u8]> = TableDefinition::new("event_types");

pub const ENDPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("endpoints");
/// (customer id, endpoint id)
pub const CUSTOMER_ENDPOINTS: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("customer_endpoints");

pub const EVENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("events");
/// (customer id, event id)
pub const CUSTOMER_EVENTS: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("customer_events");

/// delivery id -> what a delivery is (event, endpoint, URL, …), written once at creation.
pub const DELIVERIES: TableDefinition<&str, &[u8]> = TableDefinition::new("deliveries");
/// delivery id -> how it ended: a blind insert when it finishes, never a rewrite.
pub const RESULTS: TableDefinition<&str, &[u8]> = TableDefinition::new("results");
/// Delivery id -> the headers its POST was sent with (JSON pairs; custom values masked).
pub const REQUESTS: TableDefinition<&str, &[u8]> = TableDefinition::new("requests");
/// (customer id, delivery id)
pub const CUSTOMER_DELIVERIES: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("customer_deliveries");
/// (endpoint id, delivery id): the endpoint's log, and its queue. Ids are made by the writer
/// in commit order, so whatever lies above the endpoint's claim mark is pending.
pub const ENDPOINT_DELIVERIES: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("endpoint_deliveries");
/// (event id, delivery id)
pub const EVENT_DELIVERIES: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("event_deliveries");

/// endpoint id -> claim mark: the last delivery claimed, and where the deliveries that may
/// still be in flight start. A delivery at or below the mark without a result is `sending`
/// (after a crash: `interrupted`), unless it is in `LATE`.
pub const CLAIMS: TableDefinition<&str, &[u8]> = TableDefinition::new("claims");
/// (endpoint id, delivery id) of pending deliveries at or below the claim mark: handed back
/// unstarted at shutdown. Rare, and read before the rest of the queue.
pub const LATE: TableDefinition<(&str, &str), ()> = TableDefinition::new("late");

/// (scope, minute in ms) -> counters of the deliveries that finished in that minute; a
/// scope is `all` or `ep:<endpoint id>`. Updated once per commit group.
pub const STATS: TableDefinition<(&str, i64), &[u8]> = TableDefinition::new("stats");

/// (customer id, Idempotency-Key) -> idempotency record.
pub const IDEMPOTENCY: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("idempotency");

/// Hex SHA-256 of a portal session's cookie token -> session record.
pub const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");

/// Hex SHA-256 of a one-time portal link's token -> link record (customer, expiry).
pub const PORTAL_LINKS: TableDefinition<&str, &[u8]> = TableDefinition::new("portal_links");

/// An id sorts below this in every index; used as the open upper bound of a range.
pub const ID_MAX: &str = "\u{7f}";

/// Calls `$apply!(TABLE, …)` with every table of the file: the one list. A table missing here
/// would be missing from new files and from every backup (a test compares it with the file).
#[macro_export]
#[doc(hidden)]
macro_rules! for_each_redb_table {
    ($apply:ident) => {
        $apply!(
            META,
            CUSTOMERS,
            CUSTOMER_NAMES,
            API_KEYS,
            EVENT_TYPES,
            ENDPOINTS,
            CUSTOMER_ENDPOINTS,
            EVENTS,
            CUSTOMER_EVENTS,
            DELIVERIES,
            RESULTS,
            REQUESTS,
            CUSTOMER_DELIVERIES,
            ENDPOINT_DELIVERIES,
            EVENT_DELIVERIES,
            CLAIMS,
            LATE,
            STATS,
            IDEMPOTENCY,
            SESSIONS,
            PORTAL_LINKS
        )
    };
}
pub use for_each_redb_table as for_each_table;

/// The names of every table in the list.
pub fn names() -> Vec<&'static str> {
    use redb::TableHandle;
    macro_rules! collect {
        ($($t:ident),*) => { vec![$($t.name()),*] };
    }
    for_each_table!(collect)
}
