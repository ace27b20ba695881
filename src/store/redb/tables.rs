//! Every redb table of the data file, and the one list of them that creating, migrating and
//! backing up all use.

use redb::TableDefinition;

/// `schema_version` (u64 LE), `admin_token_sha256`.
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

pub const DELIVERIES: TableDefinition<&str, &[u8]> = TableDefinition::new("deliveries");
/// (customer id, delivery id)
pub const CUSTOMER_DELIVERIES: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("customer_deliveries");
/// (endpoint id, delivery id)
pub const ENDPOINT_DELIVERIES: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("endpoint_deliveries");
/// (event id, delivery id)
pub const EVENT_DELIVERIES: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("event_deliveries");

/// The queue of record: (endpoint id, delivery id) of every delivery not yet handed to a worker.
pub const PENDING: TableDefinition<(&str, &str), ()> = TableDefinition::new("pending");
/// delivery id -> endpoint id of every delivery handed to a worker and not yet finished.
/// Whatever is here at start-up might have been sent: it becomes `interrupted`.
pub const SENDING: TableDefinition<&str, &str> = TableDefinition::new("sending");

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
            CUSTOMER_DELIVERIES,
            ENDPOINT_DELIVERIES,
            EVENT_DELIVERIES,
            PENDING,
            SENDING,
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
