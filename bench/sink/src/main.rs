//! `bench_sink PORT [WORKER_THREADS]`: serves on 127.0.0.1:PORT (0 picks a
//! free port) until SIGTERM or SIGINT, then prints its final counts.
//!
//! Prints `listening 127.0.0.1:<port>` once bound, and `requests=<n> bytes=<m>`
//! at exit. WORKER_THREADS defaults to 1 so that on a small machine the sink
//! leaves the other cores to the client being measured.

use std::process::ExitCode;
use std::sync::Arc;

use bench_sink::{serve, Counters, SinkError};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

const DEFAULT_WORKER_THREADS: usize = 1;

fn main() -> ExitCode {
    bench_sink::main_of("bench_sink", run)
}

fn run() -> Result<(), SinkError> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .ok_or_else(|| SinkError::Usage("missing PORT".into()))?
        .parse()
        .map_err(|e| SinkError::Usage(format!("bad PORT: {e}")))?;
    let threads: usize = match args.next() {
        Some(t) => t
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| SinkError::Usage(format!("bad WORKER_THREADS: {t}")))?,
        None => DEFAULT_WORKER_THREADS,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(SinkError::Runtime)?;
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|source| SinkError::Bind { port, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| SinkError::Bind { port, source })?;
        let mut term = signal(SignalKind::terminate()).map_err(SinkError::Signal)?;
        let mut int = signal(SignalKind::interrupt()).map_err(SinkError::Signal)?;
        println!("listening {bound}");
        let counters = Arc::new(Counters::default());
        tokio::spawn(serve(listener, Arc::clone(&counters)));
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let last = counters.snapshot();
        println!("requests={} bytes={}", last.requests, last.bytes);
        Ok(())
    })
}
