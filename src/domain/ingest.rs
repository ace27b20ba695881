//! The rules of ingest, written once for both engines: what a batch may hold (every customer
//! and event type known), what an event becomes (its wire body and id), which endpoints it
//! goes to (the enabled ones subscribed to its type), and what the answer says. The engines
//! read what the rules need inside their write transaction, and write what they return: ids
//! are still drawn there, in commit order (the data file's queue relies on it).

use super::input::{ValidationError, subscribes};
use super::{Accepted, Delivery, Endpoint, Event, EventType, IdGen, IdKind, NewEvent};

/// The first event of `batch` whose customer or event type the store does not know, as the
/// answer names it (`events[i]: …` in a batch of more than one). `known_customer` and
/// `known_type` ask the store.
pub fn check_batch<E>(
    batch: &[NewEvent],
    mut known_customer: impl FnMut(&str) -> Result<bool, E>,
    mut known_type: impl FnMut(&str) -> Result<bool, E>,
) -> Result<Result<(), ValidationError>, E> {
    for (i, e) in batch.iter().enumerate() {
        let at = if batch.len() > 1 {
            format!("events[{i}]: ")
        } else {
            String::new()
        };
        if !known_customer(&e.customer_id)? {
            return Ok(Err(ValidationError::new(
                "unknown_customer",
                format!("{at}no customer has id {:?}", e.customer_id),
            )));
        }
        if !known_type(&e.event)? {
            return Ok(Err(ValidationError::new(
                "unknown_event_type",
                format!("{at}unknown event type {:?}", e.event),
            )));
        }
    }
    Ok(Ok(()))
}

/// One event as it is to be written: the event, a pending delivery for each endpoint it goes
/// to (with that endpoint), and the answer's line for it.
pub struct Planned<'a> {
    pub event: Event,
    pub deliveries: Vec<(Delivery, &'a Endpoint)>,
    pub accepted: Accepted,
}

/// Makes `new` an event at `now` with a pending delivery to each of `endpoints` (the
/// customer's) that is enabled and subscribed to its type.
pub fn plan_event<'a>(
    new: NewEvent,
    ids: &IdGen,
    endpoints: &'a [Endpoint],
    now: i64,
) -> Planned<'a> {
    let (body, data_start) = Event::wire_body(&new.event, &new.data);
    let event = Event {
        id: ids.next(IdKind::Event),
        customer_id: new.customer_id,
        event: new.event,
        test: false,
        created_at: now,
        body,
        data_start,
    };
    let deliveries: Vec<(Delivery, &Endpoint)> = endpoints
        .iter()
        .filter(|ep| ep.enabled && subscribes(&ep.events, &event.event))
        .map(|ep| (Delivery::pending(ids, &event, ep, None, now), ep))
        .collect();
    let accepted = Accepted {
        id: event.id.clone(),
        event: event.event.clone(),
        customer_id: event.customer_id.clone(),
        created_at: now,
        deliveries: deliveries.len(),
    };
    Planned {
        event,
        deliveries,
        accepted,
    }
}

/// The event type a test send uses: the one asked for, else the endpoint's first subscribed
/// type, else (it takes every type) the catalog's first.
pub fn test_type(endpoint: &Endpoint, asked: Option<String>) -> String {
    asked.unwrap_or_else(|| match endpoint.events.first().map(String::as_str) {
        Some("*") | None => super::event::default_catalog()
            .into_iter()
            .next()
            .map(|t| t.name)
            .unwrap_or_default(),
        Some(n) => n.to_owned(),
    })
}

/// The answer for an event type the store does not have.
pub fn unknown_type(name: &str) -> ValidationError {
    ValidationError::new("unknown_event_type", format!("unknown event type {name:?}"))
}

/// A test event of type `et` (its example as data) for the endpoint's customer, and its one
/// delivery, to that endpoint (even a disabled one: a test goes out anyway).
pub fn plan_test(et: EventType, endpoint: &Endpoint, ids: &IdGen, now: i64) -> (Event, Delivery) {
    let (body, data_start) = Event::wire_body(&et.name, &et.example);
    let event = Event {
        id: ids.next(IdKind::Event),
        customer_id: endpoint.customer_id.clone(),
        event: et.name,
        test: true,
        created_at: now,
        body,
        data_start,
    };
    let d = Delivery::pending(ids, &event, endpoint, None, now);
    (event, d)
}

/// What an Idempotency-Key seen within the day means for a new request with `request_hash`:
/// the first answer again for the same body, a conflict for another.
pub fn replay(
    first_hash: &str,
    first: Vec<Accepted>,
    request_hash: &str,
) -> Result<Vec<Accepted>, &'static str> {
    if first_hash == request_hash {
        Ok(first)
    } else {
        Err("this Idempotency-Key was already used with a different request")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(customer: &str, event: &str) -> NewEvent {
        NewEvent {
            customer_id: customer.into(),
            event: event.into(),
            data: r#"{"a":1}"#.into(),
        }
    }

    #[test]
    fn the_first_unknown_customer_or_type_is_named_with_its_place_in_a_batch() {
        let known_c = |c: &str| Ok::<_, ()>(c == "cus_1");
        let known_t = |t: &str| Ok::<_, ()>(t == "a.b");
        assert!(
            check_batch(&[new("cus_1", "a.b")], known_c, known_t)
                .unwrap()
                .is_ok()
        );
        let e = check_batch(&[new("cus_2", "a.b")], known_c, known_t)
            .unwrap()
            .unwrap_err();
        assert_eq!(e.code, "unknown_customer");
        assert!(!e.message.contains("events["), "{}", e.message);
        let e = check_batch(
            &[new("cus_1", "a.b"), new("cus_1", "x.y")],
            known_c,
            known_t,
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(e.code, "unknown_event_type");
        assert!(e.message.starts_with("events[1]: "), "{}", e.message);
    }

    #[test]
    fn an_event_goes_to_each_enabled_subscribed_endpoint_once() {
        let ids = IdGen::new();
        let ep = |id: &str, events: &[&str], enabled: bool| {
            let mut e: Endpoint = serde_json::from_value(serde_json::json!({
                "id": id, "customer_id": "cus_1", "url": "http://127.0.0.1:9/",
                "events": events, "enabled": enabled, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "headers": {}, "created_at": 0, "updated_at": 0
            }))
            .expect("an endpoint record");
            e.enabled = enabled;
            e
        };
        let eps = vec![
            ep("ep_1", &["*"], true),
            ep("ep_2", &["a.b"], true),
            ep("ep_3", &["c.d"], true),
            ep("ep_4", &["*"], false),
        ];
        let p = plan_event(new("cus_1", "a.b"), &ids, &eps, 1_000);
        let to: Vec<&str> = p.deliveries.iter().map(|(_, e)| e.id.as_str()).collect();
        assert_eq!(to, ["ep_1", "ep_2"]);
        assert_eq!(p.accepted.deliveries, 2);
        assert_eq!(p.accepted.id, p.event.id);
        assert!(p.deliveries.iter().all(|(d, _)| d.event_id == p.event.id));
        assert_eq!(p.event.body, r#"{"event":"a.b","data":{"a":1}}"#);
    }

    #[test]
    fn a_key_replays_its_first_answer_only_for_the_same_request() {
        assert!(replay("h1", Vec::new(), "h1").is_ok());
        assert!(replay("h1", Vec::new(), "h2").is_err());
    }
}
