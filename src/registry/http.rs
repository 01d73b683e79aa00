//! The registry's REST API, as Confluent's clients call it: JSON bodies (whatever content type
//! they are sent with), replies as `application/vnd.schemaregistry.v1+json`, errors as
//! `{"error_code": 40401, "message": "..."}` with the code's first three digits as the status.
//! With basic auth configured, a request without the right `Authorization` header gets 401.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::compatibility::Mode;
use super::store::{ApiError, ApiResult, Store, VersionRef};

/// What every handler shares.
struct Shared {
    store: Mutex<Store>,
    /// The `Authorization` header a request must carry, if any.
    authorization: Option<String>,
}

type Ctx = State<Arc<Shared>>;
type Params = Query<HashMap<String, String>>;

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

fn reply(status: StatusCode, body: Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        reply(status, json!({"error_code": self.code, "message": self.message}))
    }
}

fn ok(body: Value) -> ApiResult<Response> {
    Ok(reply(StatusCode::OK, body))
}

fn flag(params: &HashMap<String, String>, name: &str) -> bool {
    params.get(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The `schema` of a request body `{"schema": "...", "schemaType": "AVRO"}`.
fn schema_of(body: &Bytes) -> ApiResult<String> {
    let invalid = |m: String| ApiError { code: 42201, message: m };
    let value: Value = serde_json::from_slice(body).map_err(|e| invalid(format!("Invalid request body: {e}")))?;
    if let Some(kind) = value.get("schemaType").and_then(Value::as_str)
        && !kind.eq_ignore_ascii_case("AVRO")
    {
        return Err(invalid(format!("Invalid schema type {kind}: this registry holds Avro schemas only")));
    }
    match value.get("schema") {
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(text.clone()),
        _ => Err(invalid("Empty schema".into())),
    }
}

/// The `compatibility` of a body `{"compatibility": "FULL"}`.
fn mode_of(body: &Bytes) -> ApiResult<Mode> {
    let invalid = |m: String| ApiError { code: 42203, message: m };
    let value: Value = serde_json::from_slice(body).map_err(|e| invalid(format!("Invalid request body: {e}")))?;
    let text = value.get("compatibility").and_then(Value::as_str).unwrap_or_default();
    text.parse().map_err(invalid)
}

fn store(shared: &Shared) -> std::sync::MutexGuard<'_, Store> {
    shared.store.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn schema_by_id(State(s): Ctx, Path(id): Path<u32>) -> ApiResult<Response> {
    ok(json!({"schema": store(&s).schema(id)?}))
}

async fn raw_schema_by_id(State(s): Ctx, Path(id): Path<u32>) -> ApiResult<Response> {
    ok(serde_json::from_str(store(&s).schema(id)?).expect("stored schemas are JSON"))
}

async fn subjects(State(s): Ctx, Query(p): Params) -> ApiResult<Response> {
    ok(json!(store(&s).subjects(flag(&p, "deleted"))))
}

async fn versions(State(s): Ctx, Path(subject): Path<String>, Query(p): Params) -> ApiResult<Response> {
    ok(json!(store(&s).versions(&subject, flag(&p, "deleted"))?))
}

async fn register(State(s): Ctx, Path(subject): Path<String>, body: Bytes) -> ApiResult<Response> {
    let text = schema_of(&body)?;
    ok(json!({"id": store(&s).register(&subject, &text)?}))
}

async fn version(State(s): Ctx, Path((subject, v)): Path<(String, String)>) -> ApiResult<Response> {
    ok(json!(store(&s).version(&subject, v.parse()?)?))
}

async fn version_schema(State(s): Ctx, Path((subject, v)): Path<(String, String)>) -> ApiResult<Response> {
    let registered = store(&s).version(&subject, v.parse()?)?;
    ok(serde_json::from_str(&registered.schema).expect("stored schemas are JSON"))
}

async fn delete_version(
    State(s): Ctx,
    Path((subject, v)): Path<(String, String)>,
    Query(p): Params,
) -> ApiResult<Response> {
    ok(json!(store(&s).delete_version(&subject, v.parse()?, flag(&p, "permanent"))?))
}

async fn lookup(State(s): Ctx, Path(subject): Path<String>, body: Bytes) -> ApiResult<Response> {
    let text = schema_of(&body)?;
    ok(json!(store(&s).lookup(&subject, &text)?))
}

async fn delete_subject(State(s): Ctx, Path(subject): Path<String>, Query(p): Params) -> ApiResult<Response> {
    ok(json!(store(&s).delete_subject(&subject, flag(&p, "permanent"))?))
}

fn compatibility_reply(result: (bool, Vec<String>), verbose: bool) -> ApiResult<Response> {
    let (compatible, messages) = result;
    if verbose {
        ok(json!({"is_compatible": compatible, "messages": messages}))
    } else {
        ok(json!({"is_compatible": compatible}))
    }
}

async fn compatible_with_version(
    State(s): Ctx,
    Path((subject, v)): Path<(String, String)>,
    Query(p): Params,
    body: Bytes,
) -> ApiResult<Response> {
    let version: VersionRef = v.parse()?;
    let text = schema_of(&body)?;
    compatibility_reply(store(&s).test_compatibility(&subject, Some(version), &text)?, flag(&p, "verbose"))
}

async fn compatible_with_versions(
    State(s): Ctx,
    Path(subject): Path<String>,
    Query(p): Params,
    body: Bytes,
) -> ApiResult<Response> {
    let text = schema_of(&body)?;
    compatibility_reply(store(&s).test_compatibility(&subject, None, &text)?, flag(&p, "verbose"))
}

async fn global_config(State(s): Ctx) -> ApiResult<Response> {
    ok(json!({"compatibilityLevel": store(&s).mode(None).to_string()}))
}

async fn set_global_config(State(s): Ctx, body: Bytes) -> ApiResult<Response> {
    let mode = mode_of(&body)?;
    store(&s).set_mode(None, mode)?;
    ok(json!({"compatibility": mode.to_string()}))
}

async fn subject_config(State(s): Ctx, Path(subject): Path<String>, Query(p): Params) -> ApiResult<Response> {
    let store = store(&s);
    let mode = match store.subject_mode(&subject) {
        Err(_) if flag(&p, "defaultToGlobal") => store.mode(None),
        other => other?,
    };
    ok(json!({"compatibilityLevel": mode.to_string()}))
}

async fn set_subject_config(State(s): Ctx, Path(subject): Path<String>, body: Bytes) -> ApiResult<Response> {
    let mode = mode_of(&body)?;
    store(&s).set_mode(Some(&subject), mode)?;
    ok(json!({"compatibility": mode.to_string()}))
}

async fn delete_subject_config(State(s): Ctx, Path(subject): Path<String>) -> ApiResult<Response> {
    ok(json!({"compatibilityLevel": store(&s).delete_mode(&subject)?.to_string()}))
}

async fn check_auth(State(s): Ctx, request: Request, next: Next) -> Response {
    let given = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match &s.authorization {
        Some(expected) if given != Some(expected.as_str()) => {
            ApiError { code: 401, message: "Unauthorized".into() }.into_response()
        }
        _ => next.run(request).await,
    }
}

/// The API over `store`; with `basic_auth` (`user:password`), only for requests that carry it.
pub fn router(store: Store, basic_auth: Option<&str>) -> Router {
    use base64::Engine;
    let authorization =
        basic_auth.map(|user_info| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_info)));
    let shared = Arc::new(Shared { store: Mutex::new(store), authorization });
    Router::new()
        .route("/", get(|| async { reply(StatusCode::OK, json!({})) }))
        .route("/schemas/types", get(|| async { reply(StatusCode::OK, json!(["AVRO"])) }))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(raw_schema_by_id))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(version).delete(delete_version))
        .route("/subjects/{subject}/versions/{version}/schema", get(version_schema))
        .route("/compatibility/subjects/{subject}/versions", post(compatible_with_versions))
        .route("/compatibility/subjects/{subject}/versions/{version}", post(compatible_with_version))
        .route("/config", get(global_config).put(set_global_config))
        .route("/config/{subject}", get(subject_config).put(set_subject_config).delete(delete_subject_config))
        .route("/mode", get(|| async { reply(StatusCode::OK, json!({"mode": "READWRITE"})) }))
        .layer(middleware::from_fn_with_state(shared.clone(), check_auth))
        .with_state(shared)
}
