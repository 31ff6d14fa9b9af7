//! A differently shaped protocol: login happens over the socket itself (SASL PLAIN in an XML
//! envelope, credentials from an environment variable), frames are XML, the server pings and
//! expects pongs. A small server written here speaks it on 127.0.0.1; the shipped scenario
//! `scenarios/xml-chat.toml` drives it through `--target`.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "s3cret-Do-Not-Leak";

type Online = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<String>>>>;

fn attr<'a>(frame: &'a str, name: &str) -> Option<&'a str> {
    let start = frame.find(&format!("{name}='"))? + name.len() + 2;
    let len = frame[start..].find('\'')?;
    Some(&frame[start..start + len])
}

/// Accepts the `chat.v2` subprotocol when offered. (The error type is tungstenite's.)
#[allow(clippy::result_large_err)]
fn negotiate(req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    let offered = req
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if offered.split(',').any(|p| p.trim() == "chat.v2") {
        resp.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("chat.v2"),
        );
    }
    Ok(resp)
}

/// One client: authenticate, then relay messages and answer pings, until it leaves.
async fn session(stream: tokio::net::TcpStream, online: Online, stats: Arc<Mutex<(u64, u64)>>) {
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, negotiate).await else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let mut jid: Option<String> = None;
    // The server pings once right after login; the client must answer.
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(text) => if sink.send(Message::text(text)).await.is_err() { break },
                None => break,
            },
            frame = source.next() => {
                let Some(Ok(Message::Text(text))) = frame else { break };
                let text = text.as_str();
                if let Some(b64) = text.strip_prefix("<auth mechanism='PLAIN'>").and_then(|r| r.strip_suffix("</auth>")) {
                    let decoded = base64::engine::general_purpose::STANDARD.decode(b64).unwrap_or_default();
                    let parts: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
                    let ok = parts.len() == 3 && parts[2] == SECRET.as_bytes();
                    if ok {
                        let user = String::from_utf8_lossy(parts[1]).into_owned();
                        online.lock().expect("lock").insert(user.clone(), tx.clone());
                        let _ = tx.send("<presence type='welcome'/>".into());
                        let _ = tx.send(format!("<success jid='{user}'/>"));
                        let _ = tx.send("<ping/>".into());
                        jid = Some(user);
                    } else {
                        let _ = tx.send("<failure/>".into());
                    }
                } else if text == "<pong/>" {
                    stats.lock().expect("lock").1 += 1;
                } else if text.starts_with("<message ") {
                    let (Some(to), Some(id), Some(from)) = (attr(text, "to"), attr(text, "id"), jid.as_deref()) else {
                        let _ = tx.send("<error/>".into());
                        continue;
                    };
                    let body = text.split("<body>").nth(1).and_then(|b| b.split("</body>").next()).unwrap_or("");
                    let peer = online.lock().expect("lock").get(to).cloned();
                    if let Some(peer) = peer {
                        let _ = peer.send(format!("<message from='{from}' id='{id}'><body>{body}</body></message>"));
                        let _ = tx.send(format!("<receipt id='{id}'/>"));
                        stats.lock().expect("lock").0 += 1;
                    }
                }
            }
        }
    }
    if let Some(j) = jid {
        online.lock().expect("lock").remove(&j);
    }
}

#[test]
fn a_socket_login_xml_protocol_is_driven_by_a_scenario() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let online: Online = Arc::default();
    let stats: Arc<Mutex<(u64, u64)>> = Arc::default();
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (o, s) = (online.clone(), stats.clone());
    runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(session(stream, o.clone(), s.clone()));
        }
    });

    let out = tempfile::tempdir().expect("tmp");
    let run_dir = out.path().join("run");
    let status = Command::new(env!("CARGO_BIN_EXE_inrush"))
        .args([
            "run",
            "scenarios/xml-chat.toml",
            "--quiet",
            // Judged by the scenario's thresholds, however this shared machine held the generator.
            "--accept-overload",
            "--workers",
            "1",
        ])
        .arg("--out")
        .arg(&run_dir)
        .args(["--target", &format!("http://{addr}")])
        .env("CHAT_SECRET", SECRET)
        .status()
        .expect("runs");
    assert_eq!(status.code(), Some(0), "thresholds of the scenario hold");

    let text = std::fs::read_to_string(run_dir.join("summary.json")).expect("summary");
    let summary: inrush::report::summary::Summary =
        serde_json::from_str(&text).expect("summary schema");
    common::assert_arrivals_accounted(&summary, &run_dir);
    let s: serde_json::Value = serde_json::from_str(&text).expect("json");
    let users = s["arrivals"]["started"].as_u64().expect("started");
    assert!(users >= 20, "{users}");
    assert_eq!(s["metrics"]["connect"]["count"].as_u64(), Some(users));
    assert_eq!(s["metrics"]["auth"]["errors"].as_u64(), Some(0));
    assert_eq!(s["metrics"]["auth"]["count"].as_u64(), Some(users));
    let sent = s["messages"]["sent"].as_u64().expect("sent");
    let (relayed, pongs) = *stats.lock().expect("lock");
    assert!(
        sent > 0 && sent == relayed,
        "sent {sent}, relayed by the server {relayed}"
    );
    assert_eq!(s["messages"]["delivered"].as_u64(), Some(sent));
    assert_eq!(s["messages"]["acked"].as_u64(), Some(sent));
    assert_eq!(s["messages"]["lost"].as_u64(), Some(0));
    assert_eq!(
        pongs, users,
        "every ping answered by the background reply rule"
    );

    // The secret went over the socket (base64) but never into the run directory.
    let b64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
    for entry in std::fs::read_dir(&run_dir).expect("run dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        let content = String::from_utf8_lossy(&bytes);
        assert!(
            !content.contains(SECRET) && !content.contains(&b64),
            "{} leaks the secret",
            path.display()
        );
    }
}

#[test]
fn a_missing_secret_is_a_scenario_error_before_any_traffic() {
    let out = Command::new(env!("CARGO_BIN_EXE_inrush"))
        .args(["validate", "scenarios/xml-chat.toml"])
        .env_remove("CHAT_SECRET")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("CHAT_SECRET") && stderr.contains("scenarios/xml-chat.toml:"),
        "{stderr}"
    );
}
