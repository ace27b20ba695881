//! The domain: customers, endpoints, events, deliveries and their states, ids, validated
//! inputs and signing. Parsed at the edge, trusted inside; free of storage and HTTP.

pub mod customer;
pub mod delivery;
pub mod endpoint;
pub mod event;
pub mod hold;
pub mod ids;
pub mod ingest;
pub mod input;
pub mod secret;
pub mod session;
pub mod signing;
pub mod stats;
pub mod time;

pub use customer::{ApiKeyRecord, Customer};
pub use delivery::{
    Claim, Delivery, DeliveryError, DeliveryFilter, DeliveryStatus, Outcome, SendJob,
};
pub use endpoint::{Endpoint, EndpointPatch, NewEndpoint, OldSecret};
pub use event::{Accepted, Event, EventType, NewEvent};
pub use hold::Pause;
pub use ids::{IdGen, IdKind};
pub use input::{EventFilter, Headers, TargetUrl, ValidationError};
pub use secret::{ApiKey, SigningSecret};
