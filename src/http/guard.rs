//! The middleware every request passes first: it caps open connections per client address
//! (trusted proxies exempt) and reads the request body (at most 1 MiB) under a deadline, so
//! that neither many connections nor a trickling body can hold the server.

use std::cell::OnceCell;
use std::pin::Pin;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage, ResponseError};
use futures_util::{Stream, StreamExt};

use super::AppState;
use super::limits::ConnectionTicket;
use crate::error::ApiError;

/// The largest request body read, for every route.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The answer to a body over `MAX_BODY_BYTES`.
pub fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

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
    // The whole body is read here, under one deadline and the size limit, whatever the
    // framing (length, chunked, HTTP/2) and whether or not the handler reads it: a trickling
    // body cannot hold the connection past the deadline.
    let mut payload = req.take_payload();
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        let too_large = too_large();
        return Ok(req.into_response(closing(too_large, payload)));
    }
    let read = actix_web::rt::time::timeout(limits.read_timeout, read_body(&mut payload)).await;
    let body = match read {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => return Ok(req.into_response(closing(e, payload))),
        Err(_) => return Ok(req.into_response(closing(too_slow(), payload))),
    };
    let once = futures_util::stream::once(async move { Ok::<_, PayloadError>(body) });
    req.set_payload(Payload::from(
        Box::pin(once) as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>
    ));
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

/// Reads a request body of at most `MAX_BODY_BYTES` (a body in one piece is not copied).
pub async fn read_body(payload: &mut Payload) -> Result<Bytes, ApiError> {
    let mut first: Option<Bytes> = None;
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("cannot read the request body: {e}"),
            )
        })?;
        let have = first.as_ref().map_or(0, Bytes::len) + buf.len();
        if have + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        match first.take() {
            None if buf.is_empty() => first = Some(chunk),
            earlier => {
                if let Some(earlier) = earlier {
                    buf.extend_from_slice(&earlier);
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
    Ok(first.unwrap_or_else(|| buf.freeze()))
}

/// An error answer after which the connection is closed, the rest of the body unread. The
/// unread body goes along with the answer: while it is held, the HTTP layer closes the
/// connection after answering instead of draining the body, however slowly it comes.
fn closing(e: ApiError, unread: Payload) -> actix_web::HttpResponse {
    let json = serde_json::to_vec(&e.body()).unwrap_or_default();
    let mut resp = actix_web::HttpResponse::build(e.status)
        .content_type("application/json")
        .force_close()
        .body(HoldingBody {
            bytes: Some(Bytes::from(json)),
            _unread: unread,
        });
    resp.head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    resp
}

/// An answer's body that holds the request's unread body until it is sent (see `closing`).
struct HoldingBody {
    bytes: Option<Bytes>,
    _unread: Payload,
}

impl MessageBody for HoldingBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> actix_web::body::BodySize {
        actix_web::body::BodySize::Sized(self.bytes.as_ref().map_or(0, |b| b.len() as u64))
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Bytes, Self::Error>>> {
        std::task::Poll::Ready(self.get_mut().bytes.take().map(Ok))
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
