//! Events: one occurrence of an event type for one customer, and the catalog of types.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventType {
    pub name: String,
    pub description: String,
    /// The example `data`, as JSON text.
    pub example: String,
}

/// An example is shown in lists and forms: small, unlike the events themselves.
pub const MAX_EXAMPLE_BYTES: usize = 16 * 1024;

impl EventType {
    /// The rules every event type keeps, wherever it is made (API, console, the seed): a
    /// dotted lowercase name, a description of at most 1024 bytes, an example that is a JSON
    /// object of at most 16 KiB. The engines check it before they store one.
    pub fn validate(&self) -> Result<(), super::ValidationError> {
        super::input::validate_event_type_name(&self.name)?;
        super::input::validate_text("description", &self.description, true)?;
        super::input::validate_data(&self.example)?;
        if self.example.len() > MAX_EXAMPLE_BYTES {
            return Err(super::ValidationError::new(
                "example_too_large",
                format!("an example may be at most {MAX_EXAMPLE_BYTES} bytes of JSON"),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub customer_id: String,
    pub event: String,
    pub test: bool,
    pub created_at: i64,
    /// The exact request body sent to receivers: `{"event":"…","data":…}`.
    pub body: String,
    /// Where `data` starts in `body` (it ends one byte before the body's end).
    pub data_start: usize,
}

impl Event {
    pub fn wire_body(event: &str, data: &str) -> (String, usize) {
        let name = serde_json::to_string(event).expect("a string serialises");
        let head = format!("{{\"event\":{name},\"data\":");
        let start = head.len();
        let mut body = head;
        body.push_str(data);
        body.push('}');
        (body, start)
    }

    pub fn data(&self) -> &str {
        // A record read back from a damaged or imported store must not bring a thread down:
        // a `data_start` that does not fit the body gives `null`.
        self.body
            .get(self.data_start..self.body.len().saturating_sub(1))
            .unwrap_or("null")
    }
}

/// One event as a producer posts it; `data` is the producer's JSON text.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub customer_id: String,
    pub event: String,
    pub data: String,
}

/// The answer to an accepted event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Accepted {
    pub id: String,
    pub event: String,
    pub customer_id: String,
    pub created_at: i64,
    pub deliveries: usize,
}

const CATALOG_JSON: &str = include_str!("../../assets/event-types.json");

#[derive(Deserialize)]
struct CatalogFile {
    event_types: Vec<CatalogEntry>,
}

#[derive(Deserialize)]
struct CatalogEntry {
    name: String,
    description: String,
    example: Box<serde_json::value::RawValue>,
}

/// The seven EnableNow event types, in catalog order.
pub fn default_catalog() -> Vec<EventType> {
    let file: CatalogFile =
        serde_json::from_str(CATALOG_JSON).expect("assets/event-types.json is valid");
    file.event_types
        .into_iter()
        .map(|e| EventType {
            name: e.name,
            description: e.description,
            example: e.example.get().to_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_catalog_has_the_seven_enablenow_types() {
        let c = super::default_catalog();
        assert_eq!(c.len(), 7);
        assert_eq!(c[0].name, "transactions.fetched");
        assert!(c.iter().all(|e| e.example.starts_with('{')));
    }

    use super::*;

    #[test]
    fn an_event_type_keeps_its_rules_wherever_it_is_made() {
        let ok = EventType {
            name: "payments.settled".into(),
            description: "d".into(),
            example: r#"{"a":1}"#.into(),
        };
        assert!(ok.validate().is_ok());
        let big = EventType {
            example: format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_EXAMPLE_BYTES)),
            ..ok.clone()
        };
        assert_eq!(big.validate().unwrap_err().code, "example_too_large");
        let bad_name = EventType {
            name: "Payments".into(),
            ..ok.clone()
        };
        assert!(bad_name.validate().is_err());
        let not_object = EventType {
            example: "[1]".into(),
            ..ok
        };
        assert!(not_object.validate().is_err());
    }

    #[test]
    fn data_of_a_damaged_record_is_null_not_a_panic() {
        let mut e = Event {
            id: "evt_1".into(),
            customer_id: "cus_1".into(),
            event: "a.b".into(),
            test: false,
            created_at: 0,
            body: r#"{"event":"a.b","data":{"x":1}}"#.into(),
            data_start: 22,
        };
        assert_eq!(e.data(), r#"{"x":1}"#);
        for (body, start) in [("", 0), ("{}", 5), ("{\"é\":1}", 3)] {
            e.body = body.into();
            e.data_start = start;
            let _ = e.data();
        }
        e.body = String::new();
        assert_eq!(e.data(), "null");
    }
}
