//! Builds and runs the actix-web server on a listener the caller bound (port 0 in tests),
//! on its own thread, with signals left to the caller so shutdown happens in order.

use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, middleware, web};

use super::AppState;
use super::api;

/// Time allowed to send a request's headers (the body has `--read-timeout-secs`).
const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub struct HttpServerHandle {
    pub addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

pub fn start(
    listener: TcpListener,
    state: AppState,
    http_workers: usize,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<HttpServerHandle> {
    let addr = listener.local_addr()?;
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            let sys = actix_web::rt::System::new();
            let server = sys.block_on(async move {
                let data = web::Data::new(state);
                let https = tls.is_some();
                let server = HttpServer::new(move || {
                    let mut headers = middleware::DefaultHeaders::new()
                        .add(("x-content-type-options", "nosniff"));
                    if https {
                        headers = headers.add(("strict-transport-security", "max-age=31536000"));
                    }
                    App::new()
                        // Static assets, JSON and metrics are compressed when asked; portal
                        // pages never are (`html` marks them): they carry CSRF tokens and
                        // secrets next to text from the query (BREACH).
                        .wrap(middleware::Compress::default())
                        .wrap(headers)
                        .wrap(middleware::from_fn(super::guard::guard))
                        .app_data(data.clone())
                        .configure(api::extractor_config)
                        .configure(api::configure)
                        .configure(super::portal::configure)
                        .default_service(web::to(super::portal::not_found_anywhere))
                })
                .workers(http_workers)
                .client_request_timeout(HEAD_TIMEOUT)
                .on_connect(|_, ext| {
                    ext.insert(super::guard::ConnectionSlot::default());
                })
                .disable_signals()
                .shutdown_timeout(5);
                match tls {
                    Some(tls) => server.listen_rustls_0_23(listener, tls),
                    None => server.listen(listener),
                }
                .map(|s| s.run())
            });
            match server {
                Ok(server) => {
                    let _ = tx.send(Ok(server.handle()));
                    if let Err(e) = sys.block_on(server) {
                        tracing::error!(error = %e, "the HTTP server stopped with an error");
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })?;
    let handle = rx
        .recv()
        .map_err(|_| std::io::Error::other("the HTTP server thread ended early"))??;
    Ok(HttpServerHandle {
        addr,
        handle,
        thread: Some(thread),
    })
}

impl HttpServerHandle {
    /// Stops accepting, lets requests in progress finish (up to 5 s), and waits.
    pub fn stop(&mut self) {
        let handle = self.handle.clone();
        let _ = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(handle.stop(true));
        })
        .join();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
