//! HTTP routes: register, verify, contact discovery, the WebSocket handshake, the SMS sink,
//! health and stats, plus the knob middleware (latency, injected failures, stalls).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::RngExt;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::sms::{send_code, Overloaded};
use super::state::{
    bump, lock, random_hex, stopped, user_id_string, valid_phone, Pending, Shared, VerifyOutcome,
    MAX_PENDING,
};
use super::ws::run_socket;

/// Request bodies above this are answered 413.
const BODY_LIMIT: usize = 64 * 1024;
/// WebSocket frames and messages above this close the socket.
const WS_MESSAGE_LIMIT: usize = 64 * 1024;
/// Idle sockets should be cheap: tungstenite allocates the read buffer up front.
const WS_BUFFER: usize = 4 * 1024;
const MAX_CONTACTS: usize = 1000;
const DEFAULT_SMS_WAIT_MS: u64 = 10_000;
const MAX_SMS_WAIT_MS: u64 = 60_000;

pub(crate) fn routes(shared: Arc<Shared>) -> Router {
    let service = Router::new()
        .route("/v1/register", post(register))
        .route("/v1/verify", post(verify))
        .route("/v1/login", post(login))
        .route("/v1/contacts/sync", post(contacts_sync))
        .route("/v1/ws", get(ws_upgrade))
        .route_layer(middleware::from_fn_with_state(shared.clone(), knobs_layer));
    let open = Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/stats", get(stats))
        .route("/v1/test/sms/{phone}", get(sms_sink));
    service
        .merge(open)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

/// An error answered as `{"error": "..."}`, optionally with `Retry-After`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    retry_after_s: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after_s: None,
        }
    }

    fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after_s = Some(seconds);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        if let Some(s) = self.retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}

/// Like `axum::Json`, but every rejection is a JSON error (400 for a bad body, 413 too large),
/// and the content type is not insisted upon.
pub(crate) struct JsonBody<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            let status = rej.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(status, "request body too large (limit 64 KiB)")
            } else {
                ApiError::new(status, rej.body_text())
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
    }
}

/// Applies the knobs to a service request: wait out a stall, add latency, maybe fail, and hold
/// a response that is ready during a stall until the stall ends.
async fn knobs_layer(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    shared.wait_out_stall().await;
    if !shared.knobs.latency.is_zero() {
        tokio::time::sleep(shared.knobs.latency).await;
    }
    let p = shared.knobs.failure_rate;
    if p > 0.0 && rand::rng().random_bool(p) {
        bump(&shared.stats.injected_failures);
        return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "injected failure")
            .into_response();
    }
    let response = next.run(req).await;
    shared.wait_out_stall().await;
    response
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn unauthorized() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "missing or invalid token")
}

#[derive(Deserialize)]
struct RegisterRequest {
    phone: String,
}

async fn register(
    State(shared): State<Arc<Shared>>,
    JsonBody(req): JsonBody<RegisterRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if !valid_phone(&req.phone) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "phone must be a + followed by 6 to 15 digits",
        ));
    }
    if lock(&shared.users).by_phone.contains_key(&req.phone) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "phone already registered",
        ));
    }
    let now = Instant::now();
    let (swept, pending) = {
        let mut v = lock(&shared.verifications);
        (v.sweep(now), v.pending.len())
    };
    if swept {
        shared.sms.sweep(now);
    }
    if pending >= MAX_PENDING {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many pending verifications",
        )
        .retry_after(10));
    }
    let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
    send_code(&shared, &req.phone, code.clone()).map_err(|Overloaded(seconds)| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "sms gateway overloaded")
            .retry_after(seconds)
    })?;
    let id = random_hex(16);
    lock(&shared.verifications).pending.insert(
        id.clone(),
        Pending {
            phone: req.phone,
            code,
            created: now,
            wrong_attempts: 0,
        },
    );
    Ok((StatusCode::ACCEPTED, Json(json!({ "verification_id": id }))))
}

#[derive(Deserialize)]
struct VerifyRequest {
    verification_id: String,
    code: String,
}

async fn verify(
    State(shared): State<Arc<Shared>>,
    JsonBody(req): JsonBody<VerifyRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let now = Instant::now();
    if !lock(&shared.verify_bucket).try_take(now) {
        bump(&shared.stats.verifications_throttled);
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "verification capacity exceeded",
        )
        .retry_after(1));
    }
    let outcome = lock(&shared.verifications).check(&req.verification_id, &req.code, now);
    let phone = match outcome {
        VerifyOutcome::Ok(phone) => phone,
        VerifyOutcome::Unknown => {
            bump(&shared.stats.verifications_failed);
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown or expired verification_id",
            ));
        }
        VerifyOutcome::WrongCode => {
            bump(&shared.stats.verifications_failed);
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong code"));
        }
    };
    let token = random_hex(24);
    let user = {
        let mut users = lock(&shared.users);
        if users.by_phone.contains_key(&phone) {
            None
        } else {
            let n = shared.registered.load(Ordering::Acquire) + 1;
            users.by_phone.insert(phone.clone(), n);
            users.by_token.insert(token.clone(), n);
            // Published last, so a user id is never seen before its user exists.
            shared.registered.store(n, Ordering::Release);
            Some(n)
        }
    };
    let Some(user) = user else {
        bump(&shared.stats.verifications_failed);
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "phone already registered",
        ));
    };
    shared.sms.forget(&phone);
    bump(&shared.stats.verifications_ok);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "user_id": user_id_string(user), "token": token })),
    ))
}

/// A returning user logs in with the token it got at signup: who it is, and how many messages
/// the service holds for it (delivered when its socket connects).
async fn login(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let user = bearer(&headers)
        .and_then(|t| shared.user_for_token(t))
        .ok_or_else(unauthorized)?;
    bump(&shared.stats.logins);
    let queued = shared.hub.queued_for(user);
    Ok(Json(
        json!({ "user_id": user_id_string(user), "queued": queued }),
    ))
}

#[derive(Deserialize)]
struct ContactsRequest {
    phones: Vec<String>,
}

async fn contacts_sync(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<JsonBody<ContactsRequest>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    bearer(&headers)
        .and_then(|t| shared.user_for_token(t))
        .ok_or_else(unauthorized)?;
    let JsonBody(req) = body?;
    if req.phones.len() > MAX_CONTACTS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("at most {MAX_CONTACTS} phones per request"),
        ));
    }
    let mut seen = HashSet::with_capacity(req.phones.len());
    let registered: Vec<(String, u64)> = {
        let users = lock(&shared.users);
        req.phones
            .into_iter()
            .filter_map(|p| users.by_phone.get(&p).copied().map(|n| (p, n)))
            .filter(|(p, _)| seen.insert(p.clone()))
            .collect()
    };
    let drop_fraction = shared.knobs.contacts_drop;
    let mut rng = rand::rng();
    let total = registered.len();
    let found: Vec<Value> = registered
        .into_iter()
        .filter(|_| drop_fraction <= 0.0 || !rng.random_bool(drop_fraction))
        .map(|(phone, n)| json!({ "phone": phone, "user_id": user_id_string(n) }))
        .collect();
    let stats = &shared.stats;
    stats
        .contacts_synced
        .fetch_add(found.len() as u64, Ordering::Relaxed);
    stats
        .contacts_dropped
        .fetch_add((total - found.len()) as u64, Ordering::Relaxed);
    Ok(Json(json!({ "found": found })))
}

#[derive(Deserialize)]
struct WsQuery {
    token: Option<String>,
}

async fn ws_upgrade(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<Query<WsQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let query_token = query.ok().and_then(|Query(q)| q.token);
    let user = bearer(&headers)
        .or(query_token.as_deref())
        .and_then(|t| shared.user_for_token(t))
        .ok_or_else(unauthorized)?;
    let upgrade = upgrade.map_err(|rej| ApiError::new(rej.status(), rej.body_text()))?;
    Ok(upgrade
        .read_buffer_size(WS_BUFFER)
        .write_buffer_size(WS_BUFFER)
        .max_message_size(WS_MESSAGE_LIMIT)
        .max_frame_size(WS_MESSAGE_LIMIT)
        .on_upgrade(move |socket| run_socket(shared, user, socket)))
}

#[derive(Deserialize)]
struct SinkQuery {
    wait_ms: Option<u64>,
}

/// The test SMS sink: waits for the latest code sent to a phone to be delivered.
async fn sms_sink(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<SinkQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Ok(Path(phone)) = path else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad phone in path"));
    };
    if !valid_phone(&phone) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "phone must be a + (written %2B) followed by 6 to 15 digits",
        ));
    }
    let Query(query) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("bad query: {}", e.body_text()),
        )
    })?;
    let wait = Duration::from_millis(
        query
            .wait_ms
            .unwrap_or(DEFAULT_SMS_WAIT_MS)
            .min(MAX_SMS_WAIT_MS),
    );
    let mut inbox = shared.sms.subscribe(&phone);
    let mut shutdown = shared.shutdown_signal();
    let code = tokio::select! {
        r = tokio::time::timeout(wait, inbox.wait_for(|i| i.latest_delivered().is_some())) => {
            match r {
                Ok(Ok(i)) => i.latest_delivered().map(str::to_owned),
                _ => None,
            }
        }
        _ = stopped(&mut shutdown) => None,
    };
    drop(inbox);
    match code {
        Some(code) => Ok(Json(json!({ "phone": phone, "code": code }))),
        None => {
            shared.sms.release(&phone);
            Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "no sms for this phone",
            ))
        }
    }
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(shared.stats_json())
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}
