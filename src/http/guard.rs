//! The middleware every request passes first: it caps open connections per client address
//! (trusted proxies exempt) and puts a deadline on reading the request body, so that neither
//! many connections nor a trickling body can hold the server.

use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage, ResponseError};
use futures_util::Stream;

use super::AppState;
use super::limits::ConnectionTicket;
use crate::error::ApiError;

/// Put into every new connection's data by `on_connect`; filled on its first request.
#[derive(Default)]
pub struct ConnectionSlot(OnceCell<Option<ConnectionTicket>>);

pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(st) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let limits = &st.limits;
    if let (Some(slot), Some(peer)) = (req.conn_data::<ConnectionSlot>(), req.peer_addr()) {
        let ticket = slot.0.get_or_init(|| {
            let ip = peer.ip().to_canonical();
            (!limits.trusted.contains(ip))
                .then(|| limits.connections.open(ip, limits.max_connections_per_ip))
        });
        if ticket.as_ref().is_some_and(|t| t.over) {
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many open connections from this address",
            )
            .retry_after(1)
            .error_response();
            resp.head_mut()
                .set_connection_type(actix_web::http::ConnectionType::Close);
            return Ok(req.into_response(resp));
        }
    }
    let has_body = req.headers().contains_key("content-length")
        || req.headers().contains_key("transfer-encoding");
    if has_body {
        let payload = req.take_payload();
        let deadline = Deadline {
            inner: payload,
            timer: Box::pin(actix_web::rt::time::sleep(limits.read_timeout)),
            expired: false,
        };
        req.set_payload(Payload::from(
            Box::pin(deadline) as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>
        ));
    }
    let mut resp = next.call(req).await?.map_into_boxed_body();
    if resp.status() == StatusCode::REQUEST_TIMEOUT {
        // The rest of a late body is not worth waiting for.
        resp.response_mut()
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    Ok(resp)
}

/// A request body that fails with `TimedOut` once its time is up.
struct Deadline {
    inner: Payload,
    timer: Pin<Box<actix_web::rt::time::Sleep>>,
    expired: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Pending => {
                if self.timer.as_mut().poll(cx).is_ready() {
                    self.expired = true;
                    return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the request body did not arrive in time",
                    )))));
                }
                Poll::Pending
            }
            ready => ready,
        }
    }
}

/// Answers for a body that came too slowly.
pub fn too_slow() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        "the request body did not arrive in time",
    )
}
