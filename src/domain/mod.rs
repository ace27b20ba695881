//! Domain types: ids, validated inputs and delivery states. Parsed at the edge, trusted inside.

pub mod delivery;
pub mod ids;
pub mod input;
pub mod secret;
pub mod time;

pub use delivery::{DeliveryError, DeliveryStatus};
pub use ids::{IdGen, IdKind};
pub use input::{EventFilter, Headers, TargetUrl, ValidationError};
pub use secret::{ApiKey, SigningSecret};
