//! The accept loop the test servers share (the HTTP test server in `common`,
//! the SNS proxy in `sns_common`): plain TCP or TLS, one task per
//! connection served by hyper's HTTP/1.1 server, all of it stopped by one
//! token. Included with `#[path]` by `common`; `sns_common` uses it from there.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What a test server does with each request; cloned per connection and
/// per request.
pub trait Handler: Clone + Send + Sync + 'static {
    fn handle(
        self,
        req: Request<Incoming>,
    ) -> impl Future<Output = Result<Response<Full<Bytes>>, hyper::Error>> + Send;

    /// A TLS handshake succeeded; `sni` is the server name the client sent.
    fn tls_accepted(&self, _sni: Option<String>) {}
}

/// Listens on 127.0.0.1:`port` (0: any) on the pools' runtime and serves
/// each connection with `handler`, TLS first when `tls` is given. Returns
/// the address and the token that stops the loop and every connection.
pub fn listen<H: Handler>(
    port: u16,
    handler: H,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> (SocketAddr, CancellationToken) {
    let runtime = event_pusher_core::runtime::handle().expect("runtime");
    let listener = runtime
        .block_on(TcpListener::bind(("127.0.0.1", port)))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let stop2 = stop.clone();
    runtime.spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = stop2.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => continue,
                },
            };
            let handler = handler.clone();
            let stop = stop2.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => serve(handler, stream, stop).await,
                    Some(tls) => {
                        if let Ok(stream) = tls.accept(stream).await {
                            handler
                                .tls_accepted(stream.get_ref().1.server_name().map(str::to_owned));
                            serve(handler, stream, stop).await;
                        }
                    }
                }
            });
        }
    });
    (addr, stop)
}

/// One connection, until the client closes it or `stop` is cancelled.
async fn serve<H, S>(handler: H, stream: S, stop: CancellationToken)
where
    H: Handler,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handler.clone().handle(req));
    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = conn => {}
        _ = stop.cancelled() => {}
    }
}
