//! A client of a Confluent-compatible schema registry (Confluent Schema Registry, Karapace, or
//! the project's own `schema-registry`), over its REST API: schemas by id, a subject's latest
//! version, registering and looking up.
//!
//! ```no_run
//! use brooklet::registry::SchemaRegistry;
//! // The URL Confluent's clients call `schema.registry.url`; credentials stay out of queries.
//! let registry = SchemaRegistry::new("http://127.0.0.1:38081").with_basic_auth("svc", "secret");
//! let latest = registry.latest("events-value")?;
//! println!("version {} is schema id {}", latest.version, latest.id);
//! # Ok::<(), brooklet::Error>(())
//! ```
//!
//! Schemas by id never change, so they are cached for the life of the process; so are the ids
//! of schemas registered. Credentials are kept per URL in the process ([`with_basic_auth`]
//! registers them), never in a query's plan, and no error or log line shows them.
//!
//! [`with_basic_auth`]: SchemaRegistry::with_basic_auth

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{Error, Result};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// A registry at a URL (`http://host:8081`, no trailing slash needed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchemaRegistry {
    url: String,
}

/// One version of a subject, as the registry returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredSchema {
    /// The schema's id, what the Confluent wire format writes before each value.
    pub id: u32,
    /// The version within the subject.
    pub version: u32,
    /// The schema (Avro's JSON form).
    pub schema: Value,
}

/// Process-wide state: credentials per URL and the caches.
#[derive(Default)]
struct Shared {
    /// `Authorization` header values by URL.
    authorization: HashMap<String, String>,
    schemas: HashMap<(String, u32), Value>,
    registered: HashMap<(String, String, String), u32>,
}

fn shared() -> std::sync::MutexGuard<'static, Shared> {
    static SHARED: OnceLock<Mutex<Shared>> = OnceLock::new();
    SHARED.get_or_init(Mutex::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A reply's JSON, or the registry's error code and message.
type Reply = std::result::Result<Value, (u64, String)>;

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into()
    })
}

impl SchemaRegistry {
    /// The registry at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        SchemaRegistry { url: url.into().trim_end_matches('/').to_string() }
    }

    /// Requests to this registry authenticate as `user` (Confluent Cloud: the API key) with
    /// `password` (its secret), for this process; queries name only the URL.
    pub fn with_basic_auth(self, user: &str, password: &str) -> Self {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        shared().authorization.insert(self.url.clone(), format!("Basic {token}"));
        self
    }

    /// The registry's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn failed(&self, what: &str, message: impl std::fmt::Display) -> Error {
        Error::Registry { url: self.url.clone(), message: format!("{what}: {message}") }
    }

    /// Sends `call` to `path`: the reply's JSON, or the registry's error code and message;
    /// `Err` if the registry cannot be reached.
    fn send(&self, path: &str, call: Call, what: &str) -> Result<Reply> {
        let url = format!("{}{path}", self.url);
        let authorization = shared().authorization.get(&self.url).cloned();
        let authorization = authorization.as_deref();
        let agent = agent();
        let sent = match call {
            Call::Get => authorized(agent.get(&url), authorization).header("Accept", CONTENT_TYPE).call(),
            Call::Delete => authorized(agent.delete(&url), authorization).header("Accept", CONTENT_TYPE).call(),
            Call::Post(body) => {
                authorized(agent.post(&url), authorization).header("Content-Type", CONTENT_TYPE).send(body.to_string())
            }
            Call::Put(body) => {
                authorized(agent.put(&url), authorization).header("Content-Type", CONTENT_TYPE).send(body.to_string())
            }
        };
        let mut response = sent.map_err(|e| self.failed(what, format!("the registry is unreachable ({e})")))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().map_err(|e| self.failed(what, e))?;
        let reply: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if (200..300).contains(&status) {
            return Ok(Ok(reply));
        }
        let code = reply.get("error_code").and_then(Value::as_u64).unwrap_or(u64::from(status));
        let message = reply.get("message").and_then(Value::as_str).map_or_else(|| reply.to_string(), str::to_string);
        Ok(Err((code, message)))
    }

    /// [`send`](Self::send), with the registry's error as an [`Error`].
    fn request(&self, path: &str, call: Call, what: &str) -> Result<Value> {
        self.send(path, call, what)?.map_err(|(code, message)| self.failed(what, format!("{message} (error {code})")))
    }

    /// The schema with registry id `id` (cached); `None` if the registry has no such id.
    pub fn find_schema(&self, id: u32) -> Result<Option<Value>> {
        if let Some(schema) = shared().schemas.get(&(self.url.clone(), id)) {
            return Ok(Some(schema.clone()));
        }
        let what = format!("schema id {id}");
        let reply = match self.send(&format!("/schemas/ids/{id}"), Call::Get, &what)? {
            Ok(reply) => reply,
            Err((40403, _)) => return Ok(None),
            Err((code, message)) => return Err(self.failed(&what, format!("{message} (error {code})"))),
        };
        let schema = schema_field(&reply).map_err(|m| self.failed(&what, m))?;
        shared().schemas.insert((self.url.clone(), id), schema.clone());
        Ok(Some(schema))
    }

    /// The schema with registry id `id` (cached).
    pub fn schema_by_id(&self, id: u32) -> Result<Value> {
        self.find_schema(id)?.ok_or_else(|| self.failed(&format!("schema id {id}"), "Schema not found (error 40403)"))
    }

    /// The latest version of `subject`.
    pub fn latest(&self, subject: &str) -> Result<RegisteredSchema> {
        self.version(subject, "latest")
    }

    /// Version `version` (a number or `latest`) of `subject`.
    pub fn version(&self, subject: &str, version: &str) -> Result<RegisteredSchema> {
        let what = format!("subject '{subject}' version {version}");
        let reply = self.request(&format!("/subjects/{}/versions/{version}", encode(subject)), Call::Get, &what)?;
        self.registered(&reply).map_err(|m| self.failed(&what, m))
    }

    fn registered(&self, reply: &Value) -> std::result::Result<RegisteredSchema, String> {
        let number =
            |k: &str| reply.get(k).and_then(Value::as_u64).map(|n| n as u32).ok_or(format!("no {k} in {reply}"));
        let (id, version) = (number("id")?, number("version")?);
        let schema = schema_field(reply)?;
        shared().schemas.insert((self.url.clone(), id), schema.clone());
        Ok(RegisteredSchema { id, version, schema })
    }

    /// Registers `schema` under `subject` (the id it already has if it is there); refused if
    /// the subject's compatibility mode does not allow it.
    pub fn register(&self, subject: &str, schema: &Value) -> Result<u32> {
        let key = (self.url.clone(), subject.to_string(), schema.to_string());
        if let Some(id) = shared().registered.get(&key) {
            return Ok(*id);
        }
        let what = format!("registering a schema under subject '{subject}'");
        let body = json!({"schema": schema.to_string()});
        let reply = self.request(&format!("/subjects/{}/versions", encode(subject)), Call::Post(body), &what)?;
        let id =
            reply.get("id").and_then(Value::as_u64).ok_or_else(|| self.failed(&what, format!("no id in {reply}")))?;
        shared().registered.insert(key, id as u32);
        shared().schemas.insert((self.url.clone(), id as u32), schema.clone());
        Ok(id as u32)
    }

    /// The version of `subject` that holds `schema`.
    pub fn lookup(&self, subject: &str, schema: &Value) -> Result<RegisteredSchema> {
        let what = format!("looking up a schema under subject '{subject}'");
        let body = json!({"schema": schema.to_string()});
        let reply = self.request(&format!("/subjects/{}", encode(subject)), Call::Post(body), &what)?;
        self.registered(&reply).map_err(|m| self.failed(&what, m))
    }

    /// Whether `schema` may follow version `version` of `subject` under its mode, and why not.
    pub fn test_compatibility(&self, subject: &str, version: &str, schema: &Value) -> Result<(bool, Vec<String>)> {
        let what = format!("testing compatibility with subject '{subject}' version {version}");
        let body = json!({"schema": schema.to_string()});
        let path = format!("/compatibility/subjects/{}/versions/{version}?verbose=true", encode(subject));
        let reply = self.request(&path, Call::Post(body), &what)?;
        let compatible = reply.get("is_compatible").and_then(Value::as_bool).unwrap_or(false);
        let messages = reply
            .get("messages")
            .and_then(Value::as_array)
            .map(|m| m.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).collect())
            .unwrap_or_default();
        Ok((compatible, messages))
    }

    /// Sets `subject`'s compatibility mode (`NONE`, `BACKWARD`, `BACKWARD_TRANSITIVE`,
    /// `FORWARD`, `FORWARD_TRANSITIVE`, `FULL`, `FULL_TRANSITIVE`).
    pub fn set_compatibility(&self, subject: &str, mode: &str) -> Result<()> {
        let what = format!("setting the compatibility of subject '{subject}'");
        let body = json!({"compatibility": mode});
        self.request(&format!("/config/{}", encode(subject)), Call::Put(body), &what).map(|_| ())
    }

    /// Deletes `subject` and all its versions for good (soft, then permanently, as the
    /// registry requires); the versions it had, none if there was no such subject. Schemas
    /// stay readable by id.
    pub fn delete_subject(&self, subject: &str) -> Result<Vec<u32>> {
        let what = format!("deleting subject '{subject}'");
        let path = format!("/subjects/{}", encode(subject));
        let versions = match self.send(&path, Call::Delete, &what)? {
            Ok(reply) => reply.as_array().map(|v| v.iter().filter_map(|n| n.as_u64()).map(|n| n as u32).collect()),
            Err((40401, _)) => return Ok(Vec::new()),
            Err((code, message)) => return Err(self.failed(&what, format!("{message} (error {code})"))),
        };
        self.request(&format!("{path}?permanent=true"), Call::Delete, &what)?;
        shared().registered.retain(|(url, s, _), _| !(url == &self.url && s == subject));
        Ok(versions.unwrap_or_default())
    }
}

/// A request: its method and, for POST and PUT, its JSON body.
enum Call {
    Get,
    Delete,
    Post(Value),
    Put(Value),
}

/// `request` with the `Authorization` header, if there is one for its URL.
fn authorized<B>(request: ureq::RequestBuilder<B>, authorization: Option<&str>) -> ureq::RequestBuilder<B> {
    match authorization {
        Some(a) => request.header("Authorization", a),
        None => request,
    }
}

/// The `schema` text of a reply, parsed.
fn schema_field(reply: &Value) -> std::result::Result<Value, String> {
    let text = reply.get("schema").and_then(Value::as_str).ok_or(format!("no schema in {reply}"))?;
    serde_json::from_str(text).map_err(|e| format!("the schema is not JSON: {e}"))
}

/// A subject name as one URL path segment.
fn encode(subject: &str) -> String {
    subject
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
