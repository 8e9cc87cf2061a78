//! Row (d) of the HTTP benchmark: the core's `HttpPool` alone, no BEAM.
//!
//! `bench_core PORT` submits BENCH_EVENTS (100000) jobs from one thread to a
//! pool of BENCH_WORKERS (10) connections to the sink on 127.0.0.1:PORT, and
//! prints one `RESULT row=d ...` line: events/s until every job got its 200,
//! the submit call's cost (p50/p99) and this process's CPU time per event.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_sink::{fetch_counts, CpuError, ProcessCpu};
use event_pusher_core::http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use event_pusher_core::http::{HttpJob, HttpPool, HttpPoolConfig, StartError, SubmitError};
use event_pusher_core::{Bytes, Outcome, OutcomeSink};

/// The same request as every other row (see bench/wrk/post.lua).
const BODY: &[u8] = b"author=alice&server=localhost&receiver=bob&message=Hello+from+the+benchmark";
const PATH: &str = "/notify";
const WARMUP_EVENTS: u64 = 2000;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const DELIVERY_DEADLINE: Duration = Duration::from_secs(60);
const CLOSE_DRAIN: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error("usage: bench_core PORT ({0})")]
    Usage(String),
    #[error("bad {name}: {value}")]
    Env { name: &'static str, value: String },
    #[error("cannot start the pool: {0}")]
    Start(#[from] StartError),
    #[error("submit refused: {0}")]
    Submit(#[from] SubmitError),
    #[error("only {delivered} of {expected} events were delivered in time")]
    Undelivered { delivered: u64, expected: u64 },
    #[error("cannot read the sink's or this process's counters: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Cpu(#[from] CpuError),
}

/// Counts final 2xx responses; everything else is counted as a failure.
struct Counting {
    delivered: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl OutcomeSink<u64> for Counting {
    fn results(&mut self, batch: &mut Vec<(u64, Outcome)>) {
        for (_tag, outcome) in batch.drain(..) {
            match outcome {
                Outcome::Response { status, .. } if (200..300).contains(&status) => {
                    self.delivered.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn panicked(&mut self, location: &'static str) {
        eprintln!("bench_core: pool task panicked at {location}");
    }
}

fn main() -> ExitCode {
    bench_sink::main_of("bench_core", run)
}

fn run() -> Result<(), BenchError> {
    let port: u16 = std::env::args()
        .nth(1)
        .ok_or_else(|| BenchError::Usage("missing PORT".into()))?
        .parse()
        .map_err(|e| BenchError::Usage(format!("bad PORT: {e}")))?;
    let events = env_u64("BENCH_EVENTS", 100_000)?;
    let workers = env_u64("BENCH_WORKERS", 10)?;
    let delivered = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let pool = HttpPool::start(
        HttpPoolConfig {
            base_url: format!("http://127.0.0.1:{port}"),
            workers: workers as usize,
            request_timeout: REQUEST_TIMEOUT,
            // Every event fits at once: this row measures delivery, not overload.
            queue_capacity: events.max(WARMUP_EVENTS) as usize,
            tls: None,
        },
        Counting {
            delivered: Arc::clone(&delivered),
            failed: Arc::clone(&failed),
        },
    )?;
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );

    submit_all(&pool, &headers, WARMUP_EVENTS, &mut Vec::new())?;
    wait_delivered(&delivered, WARMUP_EVENTS)?;
    fetch_counts(port, "/reset")?;
    delivered.store(0, Ordering::Relaxed);

    let mut latencies = Vec::with_capacity(events as usize);
    let cpu = ProcessCpu::new()?;
    let cpu0 = cpu.micros()?;
    let start = Instant::now();
    submit_all(&pool, &headers, events, &mut latencies)?;
    wait_delivered(&delivered, events)?;
    let elapsed = start.elapsed().as_secs_f64();
    let cpu1 = cpu.micros()?;
    let counts = fetch_counts(port, "/count")?;
    pool.close(CLOSE_DRAIN, |_| {});

    latencies.sort_unstable();
    println!(
        "RESULT row=d events={events} seconds={elapsed:.3} events_per_s={:.1} \
         p50_us={:.3} p99_us={:.3} cpu_us_per_event={:.2} sink_count={} sink_bytes={} \
         failed_attempts={}",
        events as f64 / elapsed,
        percentile(&latencies, 0.50) as f64 / 1000.0,
        percentile(&latencies, 0.99) as f64 / 1000.0,
        (cpu1 - cpu0) as f64 / events as f64,
        counts.requests,
        counts.bytes,
        failed.load(Ordering::Relaxed),
    );
    Ok(())
}

/// Submits `n` jobs, recording each submit call's duration in nanoseconds.
fn submit_all(
    pool: &HttpPool<u64>,
    headers: &HeaderMap,
    n: u64,
    latencies: &mut Vec<u64>,
) -> Result<(), BenchError> {
    for tag in 0..n {
        let job = HttpJob {
            tag,
            id: event_pusher_core::EventId::new(),
            path: PATH,
            headers: headers.clone(),
            body: Bytes::from_static(BODY),
            max_retries: 2,
            retry_base: Duration::from_millis(100),
            delivery: Default::default(),
        };
        let t0 = Instant::now();
        pool.submit(job)?;
        latencies.push(t0.elapsed().as_nanos() as u64);
    }
    Ok(())
}

fn wait_delivered(delivered: &AtomicU64, expected: u64) -> Result<(), BenchError> {
    let deadline = Instant::now() + DELIVERY_DEADLINE;
    loop {
        let got = delivered.load(Ordering::Relaxed);
        if got >= expected {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(BenchError::Undelivered {
                delivered: got,
                expected,
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Nearest-rank percentile of a sorted, non-empty slice.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn env_u64(name: &'static str, default: u64) -> Result<u64, BenchError> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or(BenchError::Env { name, value: v }),
        _ => Ok(default),
    }
}
