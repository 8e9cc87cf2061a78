//! A fast local HTTP/1.1 sink for the benchmarks.
//!
//! Every `POST` (any path) is answered `200` with an empty body once its body
//! has been read; the sink counts requests and body bytes. Two `GET` routes
//! let a benchmark read the counters without extra tooling:
//! - `GET /count` answers `"<requests> <bytes>\n"`;
//! - `GET /reset` answers the same and sets both counters to zero;
//! - `GET /total` answers `"<requests>\n"`, every request since start (never
//!   reset: a benchmark divides the sink's own CPU time by it).

mod cpu;
pub use cpu::{CpuError, ProcessCpu};

/// The `main` of every binary of this crate: runs `run`; on an error prints
/// `NAME: <error>` on stderr and fails.
pub fn main_of<E: std::fmt::Display>(
    name: &str,
    run: impl FnOnce() -> Result<(), E>,
) -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

use std::convert::Infallible;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop
/// does not spin while the cause lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Why the sink could not run.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("usage: bench_sink PORT [WORKER_THREADS] ({0})")]
    Usage(String),
    #[error("cannot build the tokio runtime: {0}")]
    Runtime(#[source] io::Error),
    #[error("cannot bind 127.0.0.1:{port}: {source}")]
    Bind {
        port: u16,
        #[source]
        source: io::Error,
    },
    #[error("cannot install the signal handler: {0}")]
    Signal(#[source] io::Error),
}

/// What the sink has received since start or the last reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub requests: u64,
    pub bytes: u64,
}

impl std::fmt::Display for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.requests, self.bytes)
    }
}

/// Request and byte counters shared by every connection task.
#[derive(Debug, Default)]
pub struct Counters {
    requests: AtomicU64,
    bytes: AtomicU64,
    total: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            requests: self.requests.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    /// Zeroes the counters and returns what they held.
    pub fn reset(&self) -> Snapshot {
        Snapshot {
            requests: self.requests.swap(0, Ordering::Relaxed),
            bytes: self.bytes.swap(0, Ordering::Relaxed),
        }
    }

    /// Requests received since start.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    fn record(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }
}

/// Accepts connections forever, one task per connection (keep-alive).
pub async fn serve(listener: TcpListener, counters: Arc<Counters>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                eprintln!("bench_sink: accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Small requests and responses: do not let Nagle delay them.
        if let Err(e) = stream.set_nodelay(true) {
            eprintln!("bench_sink: set_nodelay failed: {e}");
        }
        let counters = Arc::clone(&counters);
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, Arc::clone(&counters)));
            // A client closing its connection mid-request is normal at the end
            // of a load run; it is not worth a line.
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    counters: Arc<Counters>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match (req.method(), req.uri().path()) {
        (&Method::POST, _) => match drain(req.into_body()).await {
            Ok(bytes) => {
                counters.record(bytes);
                reply(StatusCode::OK, Bytes::new())
            }
            // The body never fully arrived: not a delivered request.
            Err(_) => reply(StatusCode::BAD_REQUEST, Bytes::new()),
        },
        (&Method::GET, "/count") => text(counters.snapshot()),
        (&Method::GET, "/reset") => text(counters.reset()),
        (&Method::GET, "/total") => reply(
            StatusCode::OK,
            Bytes::from(format!("{}\n", counters.total())),
        ),
        (&Method::GET, _) => reply(StatusCode::NOT_FOUND, Bytes::new()),
        _ => reply(StatusCode::METHOD_NOT_ALLOWED, Bytes::new()),
    };
    Ok(response)
}

/// Reads the whole body, returning its length.
async fn drain(mut body: Incoming) -> Result<u64, hyper::Error> {
    let mut len = 0u64;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            len += data.len() as u64;
        }
    }
    Ok(len)
}

fn text(snapshot: Snapshot) -> Response<Full<Bytes>> {
    reply(StatusCode::OK, Bytes::from(format!("{snapshot}\n")))
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}

/// Reads the counters of a sink on 127.0.0.1:`port` with a blocking
/// `GET path` (`/count`, or `/reset` to zero them as well).
pub fn fetch_counts(port: u16, path: &str) -> io::Result<Snapshot> {
    let mut conn = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n"
    )?;
    let mut reply = String::new();
    conn.read_to_string(&mut reply)?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("bad reply: {reply:?}"));
    let (_head, body) = reply.split_once("\r\n\r\n").ok_or_else(bad)?;
    let mut numbers = body.split_whitespace().map(str::parse::<u64>);
    match (numbers.next(), numbers.next()) {
        (Some(Ok(requests)), Some(Ok(bytes))) => Ok(Snapshot { requests, bytes }),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts a sink on an ephemeral port; the runtime lives as long as the
    /// returned handle.
    fn start() -> (tokio::runtime::Runtime, u16) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt
            .block_on(TcpListener::bind(("127.0.0.1", 0)))
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        rt.spawn(serve(listener, Arc::new(Counters::default())));
        (rt, port)
    }

    /// Sends one request on a keep-alive connection; returns (status line, body).
    fn request(conn: &mut TcpStream, method: &str, path: &str, body: &str) -> (String, String) {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(head.as_bytes()).expect("write");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let n = conn.read(&mut chunk).expect("read");
            assert!(n > 0, "connection closed early");
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len: usize = text[..end]
                    .lines()
                    .find_map(|l| {
                        let l = l.to_ascii_lowercase();
                        l.strip_prefix("content-length:")
                            .map(|v| v.trim().parse().expect("length"))
                    })
                    .unwrap_or(0);
                if text.len() >= end + 4 + len {
                    let status = text.lines().next().unwrap_or_default().to_string();
                    return (status, text[end + 4..end + 4 + len].to_string());
                }
            }
        }
    }

    #[test]
    fn posts_are_answered_200_and_counted_with_their_bytes() {
        let (_rt, port) = start();
        let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (status, body) = request(&mut conn, "POST", "/notify", "hello");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body, "");
        let (status, _) = request(&mut conn, "POST", "/other", "world!");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(request(&mut conn, "GET", "/count", "").1, "2 11\n");
        let expected = Snapshot {
            requests: 2,
            bytes: 11,
        };
        assert_eq!(fetch_counts(port, "/count").expect("fetch"), expected);
    }

    #[test]
    fn reset_returns_the_counts_and_zeroes_them_but_not_the_total() {
        let (_rt, port) = start();
        let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        request(&mut conn, "POST", "/notify", "abc");
        assert_eq!(request(&mut conn, "GET", "/reset", "").1, "1 3\n");
        assert_eq!(request(&mut conn, "GET", "/count", "").1, "0 0\n");
        // The total is never reset.
        request(&mut conn, "POST", "/notify", "de");
        assert_eq!(request(&mut conn, "GET", "/total", "").1, "2\n");
        assert_eq!(
            request(&mut conn, "GET", "/nothing", "").0,
            "HTTP/1.1 404 Not Found"
        );
    }
}
