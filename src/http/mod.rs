//! The HTTP side: the JSON API under `/api/v1` (with health, metrics and the OpenAPI
//! document) and the HTML portal.

pub mod api;
pub mod auth;
pub mod body;
pub mod client_addr;
pub mod guard;
pub mod limits;
pub mod portal;
pub mod server;
pub mod throttle;

use std::sync::Arc;

use crate::metrics::Metrics;
use crate::store::SharedStore;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: SharedStore,
    pub metrics: Arc<Metrics>,
    pub portal: Arc<portal::Portal>,
    pub limits: Arc<limits::Limits>,
}
