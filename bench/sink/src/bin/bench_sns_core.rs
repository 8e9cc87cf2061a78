//! The limit row of the SNS benchmark: the core's `SnsPool` alone, no BEAM.
//!
//! `bench_sns_core ENDPOINT TOPIC_ARN EVENTS POOL_SIZE on|off ROW` publishes
//! a few warm-up notifications, then EVENTS notifications from one thread in a
//! tight loop (batching on or off), waits until every one is published (or
//! dropped) and prints one line:
//! `RESULT row=ROW events=.. publishes_per_s=.. requests=.. requests_per_s=..
//!  call_p50_us=.. call_p99_us=.. cpu_us_per_event=.. dropped=..`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use bench_sink::{CpuError, ProcessCpu};
use event_pusher_core::secret::Secret;
use event_pusher_core::sns::{SnsJob, SnsPool, SnsPoolConfig, SnsStats, StartError, SubmitError};
use event_pusher_core::{Outcome, OutcomeSink};

/// The body every row publishes (what mod_event_pusher_sns makes of the
/// benchmark's chat message).
const MESSAGE: &str = r#"{"from_user_id":"alice@localhost","message":"Hello from the benchmark","to_user_id":"bob@localhost"}"#;
const WARMUP_EVENTS: u64 = 200;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const DELIVERY_DEADLINE: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(2);

#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error("usage: bench_sns_core ENDPOINT TOPIC_ARN EVENTS POOL_SIZE on|off ROW ({0})")]
    Usage(String),
    #[error("cannot start the pool: {0}")]
    Start(#[from] StartError),
    #[error("publish refused: {0}")]
    Submit(#[from] SubmitError),
    #[error("only {done} of {expected} notifications finished in time")]
    Unfinished { done: u64, expected: u64 },
    #[error(transparent)]
    Cpu(#[from] CpuError),
}

/// Outcomes are read from the counters; the sink only drains them.
struct Discard;

impl OutcomeSink<()> for Discard {
    fn results(&mut self, batch: &mut Vec<((), Outcome)>) {
        batch.clear();
    }
    fn panicked(&mut self, location: &'static str) {
        eprintln!("panic in the pool at {location}");
    }
}

struct Args {
    endpoint: String,
    topic_arn: String,
    events: u64,
    pool_size: usize,
    batching: bool,
    row: String,
}

fn parse_args() -> Result<Args, BenchError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, topic_arn, events, pool_size, batching, row] = args.as_slice() else {
        return Err(BenchError::Usage(format!("{} arguments", args.len())));
    };
    let number = |name: &str, v: &str| {
        v.parse::<u64>()
            .map_err(|_| BenchError::Usage(format!("{name} is not a number: {v}")))
    };
    let batching = match batching.as_str() {
        "on" => true,
        "off" => false,
        other => {
            return Err(BenchError::Usage(format!(
                "batching is on or off, not {other}"
            )))
        }
    };
    Ok(Args {
        endpoint: endpoint.clone(),
        topic_arn: topic_arn.clone(),
        events: number("EVENTS", events)?,
        pool_size: usize::try_from(number("POOL_SIZE", pool_size)?)
            .map_err(|_| BenchError::Usage("POOL_SIZE too large".into()))?,
        batching,
        row: row.clone(),
    })
}

fn finished(s: &SnsStats) -> u64 {
    s.published + s.dropped_retries_exhausted + s.dropped_closed
}

/// Publishes `n` notifications and returns each call's cost in ns.
fn publish_all(pool: &SnsPool<()>, topic_arn: &str, n: u64) -> Result<Vec<u64>, BenchError> {
    let mut costs = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let job = SnsJob {
            tag: (),
            id: event_pusher_core::EventId::new(),
            topic_arn: topic_arn.to_owned(),
            message: MESSAGE.to_owned(),
            attributes: Vec::new(),
            group: None,
        };
        let t = Instant::now();
        pool.publish(job)?;
        costs.push(t.elapsed().as_nanos() as u64);
    }
    Ok(costs)
}

fn wait_finished(pool: &SnsPool<()>, expected: u64) -> Result<SnsStats, BenchError> {
    let deadline = Instant::now() + DELIVERY_DEADLINE;
    loop {
        let stats = pool.stats();
        if finished(&stats) >= expected {
            return Ok(stats);
        }
        if Instant::now() >= deadline {
            return Err(BenchError::Unfinished {
                done: finished(&stats),
                expected,
            });
        }
        std::thread::sleep(POLL);
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

fn run() -> Result<(), BenchError> {
    let args = parse_args()?;
    let pool = SnsPool::start(
        SnsPoolConfig {
            endpoint: args.endpoint.clone(),
            region: "us-east-1".into(),
            access_key_id: "bench".into(),
            secret_access_key: Secret("bench-secret".into()),
            pool_size: args.pool_size,
            retry_count: 2,
            retry_time: Duration::from_millis(50),
            batching: args.batching,
            queue_capacity: (args.events + WARMUP_EVENTS) as usize,
            request_timeout: REQUEST_TIMEOUT,
        },
        Discard,
    )?;
    publish_all(&pool, &args.topic_arn, WARMUP_EVENTS)?;
    let warm = wait_finished(&pool, WARMUP_EVENTS)?;

    let cpu = ProcessCpu::new()?;
    let cpu0 = cpu.micros()?;
    let t0 = Instant::now();
    let mut costs = publish_all(&pool, &args.topic_arn, args.events)?;
    let stats = wait_finished(&pool, WARMUP_EVENTS + args.events)?;
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu.micros()? - cpu0;

    costs.sort_unstable();
    let requests = stats.requests - warm.requests;
    let dropped = stats.dropped_retries_exhausted + stats.dropped_closed
        - warm.dropped_retries_exhausted
        - warm.dropped_closed;
    println!(
        "RESULT row={} events={} publishes_per_s={:.0} requests={} requests_per_s={:.0} \
         call_p50_us={:.2} call_p99_us={:.2} cpu_us_per_event={:.1} dropped={}",
        args.row,
        args.events,
        (args.events - dropped) as f64 / elapsed,
        requests,
        requests as f64 / elapsed,
        percentile(&costs, 0.50),
        percentile(&costs, 0.99),
        cpu as f64 / args.events as f64,
        dropped
    );
    pool.close(Duration::from_secs(1), |_| {});
    Ok(())
}

fn main() -> ExitCode {
    bench_sink::main_of("bench_sns_core", run)
}
