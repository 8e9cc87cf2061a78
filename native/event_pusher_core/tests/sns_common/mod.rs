//! Test support for SNS pools: moto's server (SNS with SQS queues subscribed
//! to read what was delivered) and a counting proxy in front of it, so tests
//! see the requests that really went over the wire.
//!
//! moto: `http://127.0.0.1:$MOTO_PORT` (default 4566), started by
//! `scripts/services.sh start moto`. When it does not answer, a test prints
//! why and passes, unless `EP_REQUIRE_MOTO` is set (the test script sets it):
//! then it fails.
#![allow(dead_code)] // each test binary uses a different part

use bytes::Bytes;
use event_pusher_core::secret::Secret;
use event_pusher_core::sns::{AttributeValue, SnsJob, SnsPoolConfig};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
// The test server's accept loop: every binary that includes this module
// includes `common` too (for its collector), and a file included twice in
// one binary would be compiled twice.
use crate::common::serve_common;

pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY_ID: &str = "AKIDTESTEVENTPUSHER";
/// Must never appear in an outcome, a stat or an error.
pub const SECRET: &str = "sEcReT/never-logged+0123456789abcdef";

/// Read what SQS holds within this long (moto delivers during the publish).
const RECEIVE_DEADLINE: Duration = Duration::from_secs(10);

pub fn moto_url() -> String {
    let port = std::env::var("MOTO_PORT").unwrap_or_else(|_| "4566".into());
    format!("http://127.0.0.1:{port}")
}

/// moto, or `None` (with a note on stderr) when it is not running and not required.
pub fn moto() -> Option<Moto> {
    let url = moto_url();
    let moto = Moto::new(url.clone());
    if moto.reachable() {
        return Some(moto);
    }
    if std::env::var_os("EP_REQUIRE_MOTO").is_some() {
        panic!("moto is not reachable at {url} and EP_REQUIRE_MOTO is set");
    }
    // Written to the real stderr (not captured by the test harness), once.
    static NOTE: std::sync::Once = std::sync::Once::new();
    NOTE.call_once(|| {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: moto is not reachable at {url}; SNS tests that need it pass without \
             running (start it: scripts/services.sh start moto; set EP_REQUIRE_MOTO=1 to \
             make this a failure)"
        );
    });
    None
}

/// One message as SQS delivered it (raw delivery: the SNS message itself).
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    pub body: String,
    /// Name -> (DataType, StringValue or BinaryValue as sent by SQS).
    pub attributes: HashMap<String, (String, String)>,
    /// SQS's own attributes of the message (`MessageGroupId`,
    /// `MessageDeduplicationId`, ... : `AttributeNames=All`).
    pub system: HashMap<String, String>,
}

pub struct Moto {
    pub url: String,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    sns: aws_sdk_sns::Client,
}

impl Moto {
    fn new(url: String) -> Moto {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let http = http_client();
        let config = aws_sdk_sns::Config::builder()
            .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
            .region(aws_sdk_sns::config::Region::new(REGION))
            .endpoint_url(&url)
            .credentials_provider(aws_sdk_sns::config::Credentials::new(
                ACCESS_KEY_ID,
                SECRET,
                None,
                None,
                "test",
            ))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        let sns = aws_sdk_sns::Client::from_conf(config);
        Moto { url, rt, http, sns }
    }

    fn reachable(&self) -> bool {
        let probe = self.http.get(format!("{}/moto-api/", self.url)).send();
        self.rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(2), probe).await })
            .is_ok_and(|r| r.is_ok())
    }

    /// A new topic with a new SQS queue subscribed to it (raw delivery: the
    /// queue gets the message as published). Names are unique, so tests never
    /// see each other's messages.
    pub fn topic_with_queue(&self, name: &str) -> (String, String) {
        self.subscribed(name, true)
    }

    /// As `topic_with_queue`, but the queue gets SNS's JSON envelope (see
    /// [`Delivered::unwrap_envelope`]). Needed for binary attributes: moto
    /// 5.2 fails to receive raw deliveries that carry one.
    pub fn topic_with_envelope_queue(&self, name: &str) -> (String, String) {
        self.subscribed(name, false)
    }

    /// A FIFO topic (`<name>.fifo`, content-based deduplication off) with a
    /// FIFO queue subscribed (raw delivery).
    pub fn fifo_topic_with_queue(&self, name: &str) -> (String, String) {
        self.subscribed_as(&format!("{name}-{}.fifo", unique()), true, true)
    }

    fn subscribed(&self, name: &str, raw: bool) -> (String, String) {
        self.subscribed_as(&format!("{name}-{}", unique()), raw, false)
    }

    fn subscribed_as(&self, name: &str, raw: bool, fifo: bool) -> (String, String) {
        self.rt.block_on(async {
            let mut create = self.sns.create_topic().name(name);
            if fifo {
                create = create.attributes("FifoTopic", "true");
            }
            let topic = create.send().await.expect("create topic");
            let topic_arn = topic.topic_arn().expect("topic arn").to_owned();
            let queue_request = if fifo {
                json!({ "QueueName": name, "Attributes": { "FifoQueue": "true" } })
            } else {
                json!({ "QueueName": name })
            };
            let queue = self.sqs("CreateQueue", queue_request).await;
            let queue_url = queue["QueueUrl"].as_str().expect("queue url").to_owned();
            let attrs = self
                .sqs(
                    "GetQueueAttributes",
                    json!({ "QueueUrl": queue_url, "AttributeNames": ["QueueArn"] }),
                )
                .await;
            let queue_arn = attrs["Attributes"]["QueueArn"].as_str().expect("arn");
            self.sns
                .subscribe()
                .topic_arn(&topic_arn)
                .protocol("sqs")
                .endpoint(queue_arn)
                .attributes("RawMessageDelivery", raw.to_string())
                .send()
                .await
                .expect("subscribe");
            (topic_arn, queue_url)
        })
    }

    /// Everything the queue holds once `n` messages are there (polling until
    /// then, failing after a deadline). More than `n` shows up as such.
    pub fn receive(&self, queue_url: &str, n: usize) -> Vec<Delivered> {
        let deadline = Instant::now() + RECEIVE_DEADLINE;
        let mut got = Vec::new();
        loop {
            let batch = self.receive_once(queue_url);
            let empty = batch.is_empty();
            got.extend(batch);
            if got.len() >= n && empty {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} messages arrived",
                got.len()
            );
            if empty {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// `n` messages of a FIFO queue, each deleted once read: SQS hands out
    /// a group's next message only after the previous one is gone.
    pub fn receive_fifo(&self, queue_url: &str, n: usize) -> Vec<Delivered> {
        let deadline = Instant::now() + RECEIVE_DEADLINE;
        let mut got = Vec::new();
        while got.len() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} messages arrived",
                got.len()
            );
            let answer = self.rt.block_on(self.sqs(
                "ReceiveMessage",
                json!({
                    "QueueUrl": queue_url,
                    "MaxNumberOfMessages": 10,
                    "MessageAttributeNames": ["All"],
                    "AttributeNames": ["All"],
                }),
            ));
            let messages = answer["Messages"].as_array().cloned().unwrap_or_default();
            if messages.is_empty() {
                std::thread::sleep(Duration::from_millis(20));
            }
            for message in messages {
                let handle = message["ReceiptHandle"].as_str().expect("receipt handle");
                self.rt.block_on(self.sqs(
                    "DeleteMessage",
                    json!({ "QueueUrl": queue_url, "ReceiptHandle": handle }),
                ));
                got.push(delivered(&message));
            }
        }
        got
    }

    fn receive_once(&self, queue_url: &str) -> Vec<Delivered> {
        let answer = self.rt.block_on(self.sqs(
            "ReceiveMessage",
            json!({
                "QueueUrl": queue_url,
                "MaxNumberOfMessages": 10,
                "MessageAttributeNames": ["All"],
                "AttributeNames": ["All"],
                "VisibilityTimeout": 600,
            }),
        ));
        let Some(messages) = answer["Messages"].as_array() else {
            return Vec::new();
        };
        messages.iter().map(delivered).collect()
    }

    /// One call of SQS's JSON protocol.
    async fn sqs(&self, action: &str, body: Value) -> Value {
        let response = self
            .http
            .post(&self.url)
            .header("Content-Type", "application/x-amz-json-1.0")
            .header("X-Amz-Target", format!("AmazonSQS.{action}"))
            .header(
                "Authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20250101/{REGION}/sqs/aws4_request, \
                     SignedHeaders=host, Signature=0"
                ),
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("SQS {action}: {e}"));
        let status = response.status();
        let text = response.text().await.expect("SQS body");
        assert!(status.is_success(), "SQS {action}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

/// A plain-HTTP reqwest client for the helpers. The crate builds rustls
/// with more than one crypto provider, so reqwest needs a default one.
fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

impl Delivered {
    /// The message and attributes inside SNS's envelope (a non-raw
    /// subscription): `{"Message": ..., "MessageAttributes": {Name:
    /// {"Type": ..., "Value": ...}}}`, binary values in base64.
    pub fn unwrap_envelope(&self) -> Delivered {
        let envelope: Value = serde_json::from_str(&self.body).expect("SNS envelope");
        let body = envelope["Message"].as_str().expect("Message").to_owned();
        let mut attributes = HashMap::new();
        if let Some(attrs) = envelope["MessageAttributes"].as_object() {
            for (name, attr) in attrs {
                let data_type = attr["Type"].as_str().unwrap_or_default().to_owned();
                let value = match &attr["Value"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                attributes.insert(name.clone(), (data_type, value));
            }
        }
        Delivered {
            body,
            attributes,
            system: self.system.clone(),
        }
    }
}

fn delivered(message: &Value) -> Delivered {
    let body = message["Body"].as_str().expect("body").to_owned();
    let mut attributes = HashMap::new();
    if let Some(attrs) = message["MessageAttributes"].as_object() {
        for (name, attr) in attrs {
            let data_type = attr["DataType"].as_str().unwrap_or_default().to_owned();
            let value = attr["StringValue"]
                .as_str()
                .or_else(|| attr["BinaryValue"].as_str())
                .unwrap_or_default()
                .to_owned();
            attributes.insert(name.clone(), (data_type, value));
        }
    }
    let system = message["Attributes"]
        .as_object()
        .map(|attrs| {
            attrs
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    Delivered {
        body,
        attributes,
        system,
    }
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A pool config against `endpoint` with the test credentials.
pub fn config(endpoint: &str) -> SnsPoolConfig {
    SnsPoolConfig {
        endpoint: endpoint.to_owned(),
        region: REGION.into(),
        access_key_id: ACCESS_KEY_ID.into(),
        secret_access_key: Secret(SECRET.into()),
        pool_size: 10,
        retry_count: 2,
        retry_time: Duration::from_millis(10),
        batching: true,
        queue_capacity: 1000,
        request_timeout: Duration::from_secs(5),
    }
}

pub fn job(tag: u64, topic: &str, message: &str) -> SnsJob<u64> {
    SnsJob {
        tag,
        id: event_pusher_core::EventId::new(),
        topic_arn: topic.to_owned(),
        message: message.to_owned(),
        attributes: Vec::new(),
        group: None,
    }
}

pub fn with_attributes(mut job: SnsJob<u64>, attrs: Vec<(&str, AttributeValue)>) -> SnsJob<u64> {
    job.attributes = attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    job
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Requests the proxy forwarded, by SNS action.
#[derive(Default)]
struct Seen {
    actions: Mutex<Vec<String>>,
}

/// An HTTP proxy in front of moto that records the action of every request.
pub struct Proxy {
    pub addr: SocketAddr,
    seen: Arc<Seen>,
    stop: CancellationToken,
}

impl Proxy {
    pub fn start(moto_url: &str) -> Proxy {
        Self::start_on(0, moto_url)
    }

    /// On a given port (0: any), so a pool can point at it before it exists.
    pub fn start_on(port: u16, moto_url: &str) -> Proxy {
        Self::start_with(port, moto_url, None)
    }

    /// As `start_on`, each connection wrapped by `tls` first (HTTPS).
    pub fn start_with(port: u16, moto_url: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> Proxy {
        let seen = Arc::new(Seen::default());
        let forward = Forward {
            upstream: moto_url.to_owned(),
            http: http_client(),
            seen: seen.clone(),
        };
        let (addr, stop) = serve_common::listen(port, forward, tls);
        Proxy { addr, seen, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The SNS action of every request so far, in arrival order.
    pub fn actions(&self) -> Vec<String> {
        self.seen.actions.lock().expect("lock").clone()
    }

    pub fn count(&self, action: &str) -> usize {
        self.actions().iter().filter(|a| *a == action).count()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[derive(Clone)]
struct Forward {
    upstream: String,
    http: reqwest::Client,
    seen: Arc<Seen>,
}

impl serve_common::Handler for Forward {
    async fn handle(self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
        let (parts, body) = req.into_parts();
        let body = body.collect().await?.to_bytes();
        let action = form_value(&body, "Action").unwrap_or_else(|| "?".into());
        self.seen.actions.lock().expect("lock").push(action);
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = self
            .http
            .request(parts.method, format!("{}{target}", self.upstream))
            .body(body);
        for (name, value) in &parts.headers {
            if !matches!(name.as_str(), "host" | "content-length" | "connection") {
                request = request.header(name, value);
            }
        }
        let (status, headers, body) = match request.send().await {
            Ok(r) => {
                let status = r.status();
                let headers = r.headers().clone();
                (status, headers, r.bytes().await.unwrap_or_default())
            }
            Err(_) => (
                hyper::StatusCode::BAD_GATEWAY,
                Default::default(),
                Bytes::new(),
            ),
        };
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        for (name, value) in &headers {
            if !matches!(
                name.as_str(),
                "content-length" | "connection" | "transfer-encoding"
            ) {
                response.headers_mut().append(name, value.clone());
            }
        }
        Ok(response)
    }
}

/// A value of an `application/x-www-form-urlencoded` body.
fn form_value(body: &[u8], key: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| v.to_owned())
    })
}
