//! The HTTP side: the JSON API under `/api/v1` (with health, metrics and the OpenAPI
//! document) and the HTML portal.

pub mod api;
pub mod assets;
pub mod auth;
pub mod body;
pub mod client_addr;
pub mod guard;
pub mod limits;
pub mod portal;
pub mod server;
pub mod stats;
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
    /// This node's name (`--node-id`).
    pub node_id: Arc<str>,
    /// Where people reach the portal (`--public-url`, else the listen address), no final `/`.
    pub public_url: Arc<str>,
}

impl AppState {
    /// Takes up to `most` test sends or resends from the customer's budget: shared by every
    /// node where the store is shared (one counter in the database), else this process's.
    /// 429 `rate_limited` with `Retry-After` when none is left.
    pub async fn take_sends(
        &self,
        customer_id: &str,
        most: usize,
    ) -> Result<usize, crate::error::ApiError> {
        let per_minute = self.limits.sends_per_min();
        let most_u32 = u32::try_from(most).unwrap_or(u32::MAX);
        let c = customer_id.to_owned();
        match self
            .run(move |s| s.take_sends(&c, per_minute, most_u32))
            .await?
        {
            Some(Ok(n)) => Ok(n as usize),
            Some(Err(wait)) => Err(limits::rate_limited(wait, "test sends and resends")),
            None => self.limits.take_sends(customer_id, most),
        }
    }

    /// Gives back sends taken by `take_sends` and not used.
    pub async fn refund_sends(&self, customer_id: &str, n: usize) {
        if n == 0 {
            return;
        }
        let per_minute = self.limits.sends_per_min();
        let n32 = u32::try_from(n).unwrap_or(u32::MAX);
        let c = customer_id.to_owned();
        let shared = self.store.engine_name() == "postgres";
        if shared {
            if let Err(e) = self.run(move |s| s.refund_sends(&c, per_minute, n32)).await {
                tracing::warn!(error = %e, "cannot give back unused sends");
            }
        } else {
            self.limits.refund_sends(customer_id, n);
        }
    }

    /// Resends an endpoint's failures since `since` (until `until`), oldest first, as many as
    /// the customer's send budget allows now; what it did not use goes back to the budget.
    pub async fn recover(
        &self,
        customer_id: &str,
        endpoint_id: String,
        since: i64,
        until: Option<i64>,
    ) -> Result<crate::store::Recovery, crate::error::ApiError> {
        let budget = self.take_sends(customer_id, usize::MAX).await?;
        let c = customer_id.to_owned();
        let done = self
            .run(move |s| {
                let window = crate::store::RecoverWindow {
                    since,
                    until,
                    max: budget,
                };
                s.recover(&c, &endpoint_id, window)
            })
            .await;
        let made = done.as_ref().map_or(0, |r| r.made);
        self.refund_sends(customer_id, budget - made).await;
        Ok(done?)
    }

    /// One test send or resend from the customer's budget.
    pub async fn charge_send(&self, customer_id: &str) -> Result<(), crate::error::ApiError> {
        self.take_sends(customer_id, 1).await.map(|_| ())
    }

    /// Runs store work off the actix threads: `st.run(move |s| s.get_endpoint(&c, &id))`.
    /// The one way the API, the portal and the extractors reach the store; the work's error
    /// is theirs (a store error converts into it), and a server shutting down answers
    /// `Unavailable`.
    pub fn run<T, E>(
        &self,
        f: impl FnOnce(&dyn crate::store::Store) -> Result<T, E> + Send + 'static,
    ) -> impl std::future::Future<Output = Result<T, E>> + 'static
    where
        T: Send + 'static,
        E: From<crate::store::StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        async move {
            actix_web::web::block(move || f(store.as_ref()))
                .await
                .unwrap_or_else(|_| {
                    Err(
                        crate::store::StoreError::Unavailable("the server is shutting down".into())
                            .into(),
                    )
                })
        }
    }

    /// The state of the request's app.
    pub fn of(req: &actix_web::HttpRequest) -> &AppState {
        req.app_data::<actix_web::web::Data<AppState>>()
            .expect("AppState is registered")
    }
}
