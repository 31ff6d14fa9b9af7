//! The reference messenger over real sockets: a real server on 127.0.0.1:0, a hyper HTTP/1
//! client and a tokio-tungstenite WebSocket client. Timing checks use only lower bounds derived
//! from the knobs (and generous upper bounds), so a loaded machine cannot make them flaky.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use inrush::target::{self, Knobs, RunningTarget};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Error = Box<dyn std::error::Error + Send + Sync>;
type TestResult = Result<(), Error>;
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Generous bound for anything that should be quick.
const PATIENCE: Duration = Duration::from_secs(5);

async fn serve(knobs: Knobs) -> Result<RunningTarget, Error> {
    Ok(target::start("127.0.0.1:0".parse()?, knobs).await?)
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
}

/// One request on a fresh connection; every answer must be JSON.
async fn call(
    addr: SocketAddr,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> Result<Reply, Error> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
    let resp = tokio::time::timeout(Duration::from_secs(30), sender.send_request(req)).await??;
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await?.to_bytes();
    let json = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{status}: body is not JSON ({e}): {bytes:?}"))?;
    Ok(Reply {
        status,
        headers,
        json,
    })
}

async fn get(addr: SocketAddr, path: &str) -> Result<Reply, Error> {
    call(addr, Method::GET, path, None, None).await
}

async fn post(addr: SocketAddr, path: &str, body: Value) -> Result<Reply, Error> {
    call(addr, Method::POST, path, None, Some(body.to_string())).await
}

fn sms_path(phone: &str, wait_ms: u64) -> String {
    format!(
        "/v1/test/sms/{}?wait_ms={wait_ms}",
        phone.replace('+', "%2B")
    )
}

fn phone(n: u32) -> String {
    format!("+1555{n:07}")
}

/// Registers `phone`, reads the code from the sink; returns the verification id and code.
async fn register_and_read(addr: SocketAddr, phone: &str) -> Result<(String, String), Error> {
    let r = post(addr, "/v1/register", json!({ "phone": phone })).await?;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let id = r.json["verification_id"]
        .as_str()
        .ok_or("no verification_id")?
        .to_owned();
    let sms = get(addr, &sms_path(phone, 10_000)).await?;
    assert_eq!(sms.status, StatusCode::OK, "{}", sms.json);
    assert_eq!(sms.json["phone"], phone);
    let code = sms.json["code"].as_str().ok_or("no code")?.to_owned();
    Ok((id, code))
}

/// Full sign-up; returns (user_id, token).
async fn sign_up(addr: SocketAddr, phone: &str) -> Result<(String, String), Error> {
    let (id, code) = register_and_read(addr, phone).await?;
    let r = post(
        addr,
        "/v1/verify",
        json!({ "verification_id": id, "code": code }),
    )
    .await?;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let user = r.json["user_id"].as_str().ok_or("no user_id")?.to_owned();
    let token = r.json["token"].as_str().ok_or("no token")?.to_owned();
    Ok((user, token))
}

async fn ws_connect(addr: SocketAddr, token: &str) -> Result<Ws, Error> {
    let url = format!("ws://{addr}/v1/ws?token={token}");
    let (ws, _) = tokio_tungstenite::connect_async(url).await?;
    Ok(ws)
}

/// Next text frame as JSON (skipping control frames), within PATIENCE.
async fn next_json(ws: &mut Ws) -> Result<Value, Error> {
    loop {
        let msg = tokio::time::timeout(PATIENCE, ws.next())
            .await?
            .ok_or("socket ended")??;
        match msg {
            Message::Text(t) => return Ok(serde_json::from_str(&t)?),
            Message::Close(c) => return Err(format!("closed: {c:?}").into()),
            _ => continue,
        }
    }
}

async fn send_json(ws: &mut Ws, v: Value) -> TestResult {
    ws.send(Message::text(v.to_string())).await?;
    Ok(())
}

#[tokio::test]
async fn health_stats_and_unknown_routes() -> TestResult {
    let t = serve(Knobs::default()).await?;
    let r = get(t.addr, "/healthz").await?;
    assert_eq!(
        (r.status, r.json.clone()),
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let r = get(t.addr, "/nope").await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json["error"].is_string());
    let r = get(t.addr, "/v1/register").await?;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.json["error"].is_string());
    let r = get(t.addr, "/v1/stats").await?;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["registered_users"], 0);
    t.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn register_answers_202_400_409_413() -> TestResult {
    let t = serve(Knobs::default()).await?;
    let a = t.addr;
    for bad in [
        "15550000001",
        "+12345",
        "+1555000000000000",
        "+1555abc0001",
        "",
    ] {
        let r = post(a, "/v1/register", json!({ "phone": bad })).await?;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.json["error"].is_string());
    }
    let r = call(a, Method::POST, "/v1/register", None, Some("{nope".into())).await?;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json["error"].as_str().is_some_and(|e| e.contains("JSON")));
    let r = post(a, "/v1/register", json!({ "number": "+15550000001" })).await?;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let big = json!({ "phone": "x".repeat(100 * 1024) }).to_string();
    let r = call(a, Method::POST, "/v1/register", None, Some(big)).await?;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.json["error"].is_string());

    sign_up(a, &phone(1)).await?;
    let r = post(a, "/v1/register", json!({ "phone": phone(1) })).await?;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.json["error"].is_string());
    t.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn sms_sink_returns_the_latest_code_or_404() -> TestResult {
    let t = serve(Knobs::default()).await?;
    let a = t.addr;
    let (_, first) = register_and_read(a, &phone(1)).await?;
    assert!(first.len() == 6 && first.bytes().all(|b| b.is_ascii_digit()));

    let started = Instant::now();
    let r = get(a, &sms_path(&phone(2), 100)).await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json, json!({"error": "no sms for this phone"}));
    assert!(started.elapsed() >= Duration::from_millis(100));

    let r = get(a, "/v1/test/sms/not-a-phone?wait_ms=10").await?;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = get(a, "/v1/test/sms/%2B15550000001?wait_ms=soon").await?;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    t.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn verify_answers_201_400_401_404_409() -> TestResult {
    let t = serve(Knobs::default()).await?;
    let a = t.addr;
    let p = phone(7);
    // Two pending verifications for one phone, each with its own code.
    let (id1, code1) = register_and_read(a, &p).await?;
    let (id2, code2) = register_and_read(a, &p).await?;

    let wrong = if code1 == "000000" {
        "111111"
    } else {
        "000000"
    };
    let r = post(
        a,
        "/v1/verify",
        json!({ "verification_id": id1, "code": wrong }),
    )
    .await?;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.json["error"].is_string());

    let r = post(
        a,
        "/v1/verify",
        json!({ "verification_id": "nope", "code": code1 }),
    )
    .await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = call(a, Method::POST, "/v1/verify", None, Some("[1,2".into())).await?;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json["error"].is_string(), "JSON error body: {}", r.json);
    let r = post(a, "/v1/verify", json!({ "verification_id": id1 })).await?;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = post(
        a,
        "/v1/verify",
        json!({ "verification_id": id1, "code": code1 }),
    )
    .await?;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    assert!(r.json["user_id"].is_string() && r.json["token"].is_string());

    // Single use.
    let r = post(
        a,
        "/v1/verify",
        json!({ "verification_id": id1, "code": code1 }),
    )
    .await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The phone was registered meanwhile.
    let r = post(
        a,
        "/v1/verify",
        json!({ "verification_id": id2, "code": code2 }),
    )
    .await?;
    assert_eq!(r.status, StatusCode::CONFLICT);
    t.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn contacts_sync_finds_registered_phones() -> TestResult {
    let t = serve(Knobs::default()).await?;
    let a = t.addr;
    let (_, token_a) = sign_up(a, &phone(1)).await?;
    let (user_b, _) = sign_up(a, &phone(2)).await?;
    let body = json!({ "phones": [phone(2), phone(3), phone(2), "garbage"] }).to_string();
    let r = call(
        a,
        Method::POST,
        "/v1/contacts/sync",
        Some(&token_a),
        Some(body.clone()),
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        r.json,
        json!({ "found": [{ "phone": phone(2), "user_id": user_b }] })
    );

    let r = call(
        a,
        Method::POST,
        "/v1/contacts/sync",
        None,
        Some(body.clone()),
    )
    .await?;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(
        a,
        Method::POST,
        "/v1/contacts/sync",
        Some("bogus"),
        Some(body),
    )
    .await?;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.json["error"].is_string());

    let many: Vec<String> = (0..1001).map(phone).collect();
    let r = call(
        a,
        Method::POST,
        "/v1/contacts/sync",
        Some(&token_a),
        Some(json!({ "phones": many }).to_string()),
    )
    .await?;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    t.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn contacts_drop_one_hides_every_contact() -> TestResult {
    let t = serve(Knobs {
        contacts_drop: 1.0,
        ..Knobs::default()
    })
    .await?;
    let (_, token) = sign_up(t.addr, &phone(1)).await?;
    sign_up(t.addr, &phone(2)).await?;
    let body = json!({ "phones": [phone(1), phone(2)] }).to_string();
    let r = call(
        t.addr,
        Method::POST,
        "/v1/contacts/sync",
        Some(&token),
        Some(body),
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json, json!({ "found": [] }));
    t.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn websocket_needs_a_token() -> TestResult {
    let t = serve(Knobs::default()).await?;
    for url in [
        format!("ws://{}/v1/ws", t.addr),
        format!("ws://{}/v1/ws?token=bogus", t.addr),
    ] {
        match tokio_tungstenite::connect_async(url).await {
            Err(tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), StatusCode::UNAUTHORIZED)
            }
            other => panic!("expected 401, got {:?}", other.map(|_| ())),
        }
    }
    // A plain GET without the upgrade headers is still answered in JSON.
    let (_, token) = sign_up(t.addr, &phone(1)).await?;
    let r = call(t.addr, Method::GET, "/v1/ws", Some(&token), None).await?;
    assert!(r.status.is_client_error());
    assert!(r.json["error"].is_string());
    t.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn websocket_send_ack_and_delivery_to_every_socket() -> TestResult {
    let t = serve(Knobs::default()).await?;
    let a = t.addr;
    let (user_a, token_a) = sign_up(a, &phone(1)).await?;
    let (user_b, token_b) = sign_up(a, &phone(2)).await?;
    let mut ws_a = ws_connect(a, &token_a).await?;
    let mut ws_b1 = ws_connect(a, &token_b).await?;
    // The second socket authenticates with the header instead of the query.
    let mut req = format!("ws://{a}/v1/ws").into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {token_b}").parse()?);
    let (mut ws_b2, _) = tokio_tungstenite::connect_async(req).await?;

    send_json(
        &mut ws_a,
        json!({ "type": "send", "id": "m1", "to": user_b, "body": "hello" }),
    )
    .await?;
    assert_eq!(
        next_json(&mut ws_a).await?,
        json!({ "type": "ack", "id": "m1" })
    );
    let expected = json!({ "type": "message", "id": "m1", "from": user_a, "body": "hello" });
    assert_eq!(next_json(&mut ws_b1).await?, expected);
    assert_eq!(next_json(&mut ws_b2).await?, expected);

    let stats = get(a, "/v1/stats").await?;
    assert_eq!(stats.json["sockets"]["online"], 3);
    assert_eq!(stats.json["messages"]["relayed"], 1);
    assert_eq!(stats.json["messages"]["pushed"], 2);
    t.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn websocket_offline_queue_flushes_in_order() -> TestResult {
    let t = serve(Knobs::default()).await?;
    let a = t.addr;
    let (user_a, token_a) = sign_up(a, &phone(1)).await?;
    let (user_b, token_b) = sign_up(a, &phone(2)).await?;
    let mut ws_a = ws_connect(a, &token_a).await?;
    for i in 0..5 {
        let id = format!("m{i}");
        send_json(
            &mut ws_a,
            json!({ "type": "send", "id": id, "to": user_b, "body": format!("b{i}") }),
        )
        .await?;
        assert_eq!(
            next_json(&mut ws_a).await?,
            json!({ "type": "ack", "id": id })
        );
    }
    let mut ws_b = ws_connect(a, &token_b).await?;
    for i in 0..5 {
        let m = next_json(&mut ws_b).await?;
        assert_eq!(
            m,
            json!({ "type": "message", "id": format!("m{i}"), "from": user_a, "body": format!("b{i}") })
        );
    }
    // A socket closed by its client goes offline again: new messages wait for the next socket.
    ws_b.close(None).await?;
    drop(ws_b);
    tokio::time::sleep(Duration::from_millis(50)).await;
    send_json(
        &mut ws_a,
        json!({ "type": "send", "id": "later", "to": user_b, "body": "x" }),
    )
    .await?;
    assert_eq!(next_json(&mut ws_a).await?["type"], "ack");
    let mut ws_b = ws_connect(a, &token_b).await?;
    assert_eq!(next_json(&mut ws_b).await?["id"], "later");
    t.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn login_names_the_user_and_counts_what_is_held_for_it() -> TestResult {
    let t = serve(Knobs::default()).await?;
    let a = t.addr;
    let (user_a, token_a) = sign_up(a, &phone(1)).await?;
    let (user_b, token_b) = sign_up(a, &phone(2)).await?;
    let login = |token: Option<String>| async move {
        call(a, Method::POST, "/v1/login", token.as_deref(), None).await
    };
    // Nothing held yet.
    let r = login(Some(token_b.clone())).await?;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json, json!({ "user_id": user_b, "queued": 0 }));
    // B is offline: three messages from A are held for it.
    let mut ws_a = ws_connect(a, &token_a).await?;
    for i in 0..3 {
        let id = format!("held{i}");
        send_json(
            &mut ws_a,
            json!({ "type": "send", "id": id, "to": user_b, "body": "x" }),
        )
        .await?;
        assert_eq!(next_json(&mut ws_a).await?["type"], "ack");
    }
    let r = login(Some(token_b.clone())).await?;
    assert_eq!(r.json, json!({ "user_id": user_b, "queued": 3 }));
    // Logging in does not deliver them; connecting does, in order, and empties the queue.
    let mut ws_b = ws_connect(a, &token_b).await?;
    for i in 0..3 {
        assert_eq!(next_json(&mut ws_b).await?["id"], format!("held{i}"));
    }
    assert_eq!(login(Some(token_b.clone())).await?.json["queued"], 0);
    // A's own login names A; a bad or missing token is 401 with a JSON error.
    assert_eq!(login(Some(token_a)).await?.json["user_id"], user_a);
    for token in [Some("nope".to_string()), None] {
        let r = login(token).await?;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.json["error"].is_string());
    }
    let stats = get(a, "/v1/stats").await?.json;
    assert_eq!(stats["logins"], 4);
    t.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn websocket_errors_keep_the_socket_open() -> TestResult {
    let t = serve(Knobs::default()).await?;
    let a = t.addr;
    let (user_a, token_a) = sign_up(a, &phone(1)).await?;
    let mut ws = ws_connect(a, &token_a).await?;

    send_json(
        &mut ws,
        json!({ "type": "send", "id": "x1", "to": "u999", "body": "hi" }),
    )
    .await?;
    assert_eq!(
        next_json(&mut ws).await?,
        json!({ "type": "error", "id": "x1", "error": "unknown recipient" })
    );

    for bad in [
        "not json".to_owned(),
        json!({ "type": "shout" }).to_string(),
        json!({ "type": "send", "id": "x2" }).to_string(),
        json!({ "type": "send", "id": "i".repeat(129), "to": user_a, "body": "" }).to_string(),
    ] {
        ws.send(Message::text(bad.clone())).await?;
        let reply = next_json(&mut ws).await?;
        assert_eq!(reply["type"], "error", "{bad}");
        assert!(reply["error"].is_string());
        assert!(reply.get("id").is_none());
    }
    send_json(
        &mut ws,
        json!({ "type": "send", "id": "x3", "to": user_a, "body": "b".repeat(4097) }),
    )
    .await?;
    let reply = next_json(&mut ws).await?;
    assert_eq!(
        (&reply["type"], &reply["id"]),
        (&json!("error"), &json!("x3"))
    );
    ws.send(Message::binary(vec![1u8, 2, 3])).await?;
    assert_eq!(next_json(&mut ws).await?["type"], "error");

    // Still open: a message to oneself is acked and delivered.
    send_json(
        &mut ws,
        json!({ "type": "send", "id": "x4", "to": user_a, "body": "me" }),
    )
    .await?;
    let mut got = [next_json(&mut ws).await?, next_json(&mut ws).await?];
    got.sort_by_key(|v| v["type"].to_string());
    assert_eq!(got[0], json!({ "type": "ack", "id": "x4" }));
    assert_eq!(got[1]["type"], "message");
    t.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn sms_gateway_rate_delay_and_overload() -> TestResult {
    let rate = 20.0;
    let delay = Duration::from_millis(100);
    let t = serve(Knobs {
        sms_rate: Some(rate),
        sms_delay: delay,
        ..Knobs::default()
    })
    .await?;
    let n = 10;
    let started = Instant::now();
    for i in 0..n {
        let r = post(t.addr, "/v1/register", json!({ "phone": phone(i) })).await?;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    let r = get(t.addr, &sms_path(&phone(n - 1), 10_000)).await?;
    assert_eq!(r.status, StatusCode::OK);
    // The last SMS got slot n-1: at least (n-1)/rate after the first, plus the delay.
    let bound = Duration::from_secs_f64(f64::from(n - 1) / rate) + delay;
    let elapsed = started.elapsed();
    assert!(
        elapsed + Duration::from_millis(10) >= bound,
        "{elapsed:?} < {bound:?}"
    );
    t.shutdown().await;

    // One SMS per second, at most 60 s of backlog: the 62nd registration finds it full.
    let t = serve(Knobs {
        sms_rate: Some(1.0),
        ..Knobs::default()
    })
    .await?;
    let mut overloaded = None;
    for i in 0..70 {
        let r = post(t.addr, "/v1/register", json!({ "phone": phone(i) })).await?;
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            overloaded = Some((i, r));
            break;
        }
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    let (i, r) = overloaded.ok_or("the gateway never filled up")?;
    assert!(i >= 60, "overloaded after only {i}");
    assert_eq!(r.json, json!({ "error": "sms gateway overloaded" }));
    assert!(r.headers.contains_key("retry-after"));
    t.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn verify_capacity_answers_429_with_retry_after() -> TestResult {
    let t = serve(Knobs {
        verify_capacity: Some(5.0),
        ..Knobs::default()
    })
    .await?;
    let mut throttled = 0;
    for _ in 0..40 {
        let r = post(
            t.addr,
            "/v1/verify",
            json!({ "verification_id": "x", "code": "1" }),
        )
        .await?;
        match r.status {
            StatusCode::TOO_MANY_REQUESTS => {
                throttled += 1;
                assert_eq!(
                    r.headers.get("retry-after").map(|v| v.as_bytes()),
                    Some(&b"1"[..])
                );
                assert!(r.json["error"].is_string());
            }
            StatusCode::NOT_FOUND => {}
            other => panic!("unexpected {other}"),
        }
    }
    // 40 attempts could only all pass if they took more than 7 seconds.
    assert!(throttled > 0);
    t.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn failure_rate_one_fails_service_requests_but_not_health() -> TestResult {
    let t = serve(Knobs {
        failure_rate: 1.0,
        ..Knobs::default()
    })
    .await?;
    let r = post(t.addr, "/v1/register", json!({ "phone": phone(1) })).await?;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.json["error"].is_string());
    assert_eq!(get(t.addr, "/healthz").await?.status, StatusCode::OK);
    t.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn latency_is_added_to_service_requests() -> TestResult {
    let latency = Duration::from_millis(150);
    let t = serve(Knobs {
        latency,
        ..Knobs::default()
    })
    .await?;
    let started = Instant::now();
    let r = post(t.addr, "/v1/register", json!({ "phone": "bad" })).await?;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(started.elapsed() >= latency);
    t.shutdown().await;
    Ok(())
}

/// With stalls in the last `stall_for` of every `every` (counted from server start T0, with
/// `before <= T0 <= after`): a request sent at or after `after + k·every + (every − stall_for)`
/// arrives inside stall k or later, so it cannot be answered before `before + (k+1)·every`.
/// Without stalls it would be answered about `stall_for` earlier than that.
#[tokio::test]
async fn stalls_hold_requests_and_relaying_until_the_stall_ends() -> TestResult {
    let every = Duration::from_millis(1000);
    let stall_for = Duration::from_millis(400);
    let before = Instant::now();
    let t = serve(Knobs {
        stall_every: Some(every),
        stall_for,
        ..Knobs::default()
    })
    .await?;
    let after = Instant::now();
    // The next stall that starts (by `after`'s clock) in the future.
    let next_stall = |now: Instant| -> (Instant, Instant) {
        let mut k = 0u32;
        loop {
            let start = after + every * k + (every - stall_for);
            if start >= now {
                return (start, before + every * (k + 1));
            }
            k += 1;
        }
    };

    let (send_at, end) = next_stall(Instant::now());
    tokio::time::sleep_until(send_at.into()).await;
    let r = post(t.addr, "/v1/register", json!({ "phone": "bad" })).await?;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let answered = Instant::now();
    assert!(
        answered >= end,
        "answered {:?} before the stall ended",
        end - answered
    );
    // Health is never stalled (generous: it just has to answer).
    assert_eq!(get(t.addr, "/healthz").await?.status, StatusCode::OK);

    let (user_a, token_a) = sign_up(t.addr, &phone(1)).await?;
    let mut ws = ws_connect(t.addr, &token_a).await?;
    let (send_at, end) = next_stall(Instant::now());
    tokio::time::sleep_until(send_at.into()).await;
    send_json(
        &mut ws,
        json!({ "type": "send", "id": "s", "to": user_a, "body": "b" }),
    )
    .await?;
    let first = next_json(&mut ws).await?;
    assert!(first["type"] == "ack" || first["type"] == "message");
    let acked = Instant::now();
    assert!(
        acked >= end,
        "relayed {:?} before the stall ended",
        end - acked
    );
    t.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn shutdown_closes_open_sockets() -> TestResult {
    let t = serve(Knobs::default()).await?;
    let (_, token) = sign_up(t.addr, &phone(1)).await?;
    let mut ws = ws_connect(t.addr, &token).await?;
    tokio::time::timeout(PATIENCE, t.shutdown()).await?;
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "socket still open after shutdown");
    Ok(())
}

#[tokio::test]
async fn invalid_knobs_are_refused() -> TestResult {
    let bad = Knobs {
        failure_rate: 2.0,
        ..Knobs::default()
    };
    let err = target::start("127.0.0.1:0".parse()?, bad)
        .await
        .err()
        .ok_or("started with failure_rate = 2")?;
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    // The router itself never panics on bad knobs: they are made safe.
    let _ = target::router(Knobs {
        sms_rate: Some(-1.0),
        stall_every: Some(Duration::ZERO),
        stall_for: Duration::from_secs(1),
        ..Knobs::default()
    });
    Ok(())
}

/// A recipient that never reads fills its socket's queue: the server closes that socket as a
/// slow consumer, and every acked message is still accounted for — read by the recipient, kept
/// offline and flushed on its next connect, or counted as dropped from a full offline queue.
#[tokio::test]
async fn slow_consumer_is_closed_and_nothing_vanishes() -> TestResult {
    let t = serve(Knobs::default()).await?;
    let a = t.addr;
    let (_, token_a) = sign_up(a, &phone(1)).await?;
    let (user_b, token_b) = sign_up(a, &phone(2)).await?;

    // B's first socket has a tiny receive buffer and is not read until the end.
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    let stream = socket.connect(a).await?;
    let (mut b1, _) =
        tokio_tungstenite::client_async(format!("ws://{a}/v1/ws?token={token_b}"), stream).await?;

    let (mut a_tx, mut a_rx) = ws_connect(a, &token_a).await?.split();
    let (acks_tx, mut acks) = tokio::sync::watch::channel(0u64);
    let reader = tokio::spawn(async move {
        let mut n = 0u64;
        while let Some(Ok(m)) = a_rx.next().await {
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(&t).unwrap_or_default();
                if v["type"] == "ack" {
                    n += 1;
                    acks_tx.send_replace(n);
                }
            }
        }
    });

    let body = "x".repeat(4000);
    let mut sent = 0u64;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for _ in 0..100 {
            let frame =
                json!({ "type": "send", "id": sent.to_string(), "to": user_b, "body": body });
            a_tx.feed(Message::text(frame.to_string())).await?;
            sent += 1;
        }
        a_tx.flush().await?;
        let stats = get(a, "/v1/stats").await?;
        if stats.json["sockets"]["slow_consumers_closed"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no slow consumer after {sent} messages"
        );
    }
    tokio::time::timeout(Duration::from_secs(10), acks.wait_for(|n| *n == sent)).await??;

    let mut seen = std::collections::HashSet::new();
    // Whatever reached B's first socket before it was closed.
    while let Ok(Some(Ok(m))) = tokio::time::timeout(PATIENCE, b1.next()).await {
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t)?;
            seen.insert(v["id"].as_str().unwrap_or_default().to_owned());
        }
    }
    // The rest waits offline; a sentinel sent after reconnecting marks the end of the flush.
    let mut b2 = ws_connect(a, &token_b).await?;
    let last = json!({ "type": "send", "id": "last", "to": user_b, "body": "" });
    a_tx.send(Message::text(last.to_string())).await?;
    loop {
        let v = next_json(&mut b2).await?;
        let id = v["id"].as_str().unwrap_or_default().to_owned();
        if id == "last" {
            break;
        }
        seen.insert(id);
    }
    let stats = get(a, "/v1/stats").await?;
    let dropped = stats.json["messages"]["dropped_offline"]
        .as_u64()
        .ok_or("no dropped count")?;
    assert_eq!(stats.json["sockets"]["slow_consumers_closed"], 1);
    assert!(
        seen.len() as u64 + dropped >= sent,
        "sent {sent}, seen {}, dropped {dropped}",
        seen.len()
    );
    reader.abort();
    t.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn drop_sockets_cuts_every_socket_without_a_close_frame() -> TestResult {
    // Mean lifetime 100 ms, exponential: all eight are gone well within PATIENCE (the chance
    // that one lives 5 s is e^-50).
    let t = serve(Knobs {
        drop_sockets: Some(Duration::from_millis(100)),
        ..Knobs::default()
    })
    .await?;
    let (_, token) = sign_up(t.addr, &phone(1)).await?;
    let mut sockets = Vec::new();
    for _ in 0..8 {
        sockets.push(ws_connect(t.addr, &token).await?);
    }
    for ws in &mut sockets {
        let end = tokio::time::timeout(PATIENCE, async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(c))) => return Err(format!("a close frame: {c:?}")),
                    Some(Ok(_)) => continue,
                    // Reset, or the stream simply ending: the connection vanished.
                    Some(Err(_)) | None => return Ok(()),
                }
            }
        })
        .await?;
        end?;
    }
    let stats = get(t.addr, "/v1/stats").await?;
    assert_eq!(stats.json["sockets"]["dropped"], 8, "{}", stats.json);
    assert_eq!(stats.json["sockets"]["online"], 0, "{}", stats.json);
    t.shutdown().await;
    Ok(())
}
