//! TLS end to end: the built-in messenger served over HTTPS and WSS on 127.0.0.1 (a throwaway CA
//! and leaf certificate made by rcgen), driven by real scenario runs — the signup-and-chat flow
//! with a private CA, certificate problems as `connect` errors that name them, `insecure = true`
//! reported, `--target https://…`, mutual TLS, and per-user session resumption (a user's socket
//! after its signup, and every socket reopened after a drop) counted on the server's side.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use common::tls::{ca, leaf, serve_tls_with};
use common::{on_schedule, run_quiet, Scratch};
use inrush::report::summary::Summary;
use inrush::target::tls::HandshakeCounts;
use inrush::target::{Knobs, TlsServer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// The built-in messenger over TLS on 127.0.0.1:0, in its own thread for the test binary's
/// life; returns its address and its handshake counts.
fn serve_tls(server: TlsServer) -> (SocketAddr, Arc<HandshakeCounts>) {
    serve_tls_with(server, Knobs::default())
}

/// A server whose certificate, for 127.0.0.1 and localhost, is issued by a fresh CA; the CA's
/// PEM is written to `dir/ca.pem`.
fn server_with_ca(dir: &Path) -> (SocketAddr, Arc<HandshakeCounts>) {
    let ca = ca("inrush test CA");
    std::fs::write(dir.join("ca.pem"), &ca.pem).expect("write CA");
    let (cert, key, _, _) = leaf(&ca, &["127.0.0.1", "localhost"]);
    serve_tls(TlsServer::new(vec![cert], key, None).expect("server config"))
}

/// One `GET /healthz` per user, `users` users over one second, then two seconds without
/// arrivals: an arrival may start until the schedule's end, so a stall of the machine of up to
/// two seconds (`.ci/stall.sh`) delays the users rather than dropping them.
fn health_scenario(name: &str, target: &str, users: u32) -> String {
    format!(
        r#"name = "{name}"
seed = 5
[target]
{target}
[run]
timeout = "5s"
drain = "0s"
[load]
arrivals = "uniform"
phases = [ {{ name = "only", duration = "1s", rate = {users} }},
           {{ name = "tail", duration = "2s", rate = 0 }} ]
[[flows.f.steps]]
name = "health"
http = "GET /healthz"
"#
    )
}

#[test]
fn the_signup_and_chat_flow_runs_over_https_and_wss_and_each_user_resumes_its_own_session() {
    let scratch = Scratch::new();
    let (addr, counts) = server_with_ca(scratch.dir.path());
    // 40 users, evenly spaced; each signs up over HTTPS, opens its socket over WSS (a second
    // connection, which resumes the user's session) and chats; all stay online to the end.
    let text = format!(
        r#"name = "tls-chat"
seed = 8
[target]
url = "https://localhost:{port}"
ca = "ca.pem"
[run]
timeout = "5s"
drain = "1500ms"
[load]
arrivals = "uniform"
phases = [ {{ name = "only", duration = "2s", rate = 20 }} ]
[user]
contacts_known = 3
contacts_unknown = 2
messages = 2
think = {{ constant = "100ms" }}
stay_online = {{ constant = "60s" }}
"#,
        port = addr.port()
    );
    let outcome = run_quiet(scratch.scenario("chat", text), scratch.out("run"), None);
    let s: &Summary = &outcome.summary;
    assert_eq!(s.arrivals.started, 40);
    for name in ["register", "verify", "contacts_sync", "ws_connect"] {
        let m = &s.metrics[name];
        assert_eq!(m.count, 40, "{name}: {m:?}");
        assert_eq!(m.errors, 0, "{name}: {:?}", m.error_examples);
    }
    assert!(s.messages.sent > 0);
    assert_eq!(s.messages.delivered, s.messages.sent, "{:?}", s.messages);
    assert_eq!(s.messages.lost, Some(0));

    let tls = s.tls.as_ref().expect("the summary describes the run's TLS");
    assert!(tls.verified && !tls.client_certificate);
    // Every handshake inrush recorded, the server completed, and vice versa.
    let server_total = counts.full() + counts.resumed();
    assert_eq!(tls.handshakes, server_total, "server: {counts:?}");
    assert_eq!(tls.resumed, counts.resumed());
    // One full handshake per user (a new user has no session of its own to resume, and never
    // gets another user's), and the socket after the signup resumed the user's session.
    assert_eq!(counts.full(), 40, "{counts:?}");
    assert_eq!(counts.resumed(), 40, "{counts:?}");
    let m = &s.metrics["tls_handshake"];
    assert_eq!(m.count, tls.handshakes);
    let lat = m.latency_ms.expect("handshake latency");
    // A handshake is part of a step on a new connection: never longer than the slowest of them.
    let slowest = ["register", "ws_connect"]
        .iter()
        .filter_map(|n| s.metrics[*n].service_time_ms.map(|l| l.max))
        .fold(0.0, f64::max);
    assert!(
        lat.min > 0.0 && lat.max <= slowest,
        "{lat:?}, slowest step {slowest}"
    );
    assert_eq!(s.counts.get("tls_resumed"), Some(&tls.resumed));
    assert!(s.target.starts_with("https://localhost:"), "{}", s.target);
    assert!(s.warnings.iter().all(|w| !w.contains("NOT verified")));
}

#[test]
fn a_socket_reopened_after_a_drop_resumes_the_users_session() {
    // A stall of the generator's own would hold users past the schedule's end.
    let (outcome, (_scratch, counts)) = on_schedule(|| {
        let scratch = Scratch::new();
        let dir = scratch.dir.path();
        let ca = ca("reconnect CA");
        std::fs::write(dir.join("ca.pem"), &ca.pem).expect("write CA");
        let (cert, key, _, _) = leaf(&ca, &["localhost"]);
        // The server drops every socket after ~300 ms (exponential lifetimes): users reconnect.
        let knobs = Knobs {
            drop_sockets: Some(std::time::Duration::from_millis(300)),
            ..Knobs::default()
        };
        let (addr, counts) = serve_tls_with(
            TlsServer::new(vec![cert], key, None).expect("config"),
            knobs,
        );
        let text = format!(
            r#"name = "tls-reconnect"
seed = 9
[target]
url = "https://localhost:{port}"
ca = "ca.pem"
[run]
timeout = "5s"
drain = "0s"
reconnect = {{ attempts = 20, backoff = "20ms" }}
[load]
arrivals = "uniform"
phases = [ {{ name = "only", duration = "1s", rate = 10 }} ]
[user]
contacts_known = 0
contacts_unknown = 0
messages = 0
stay_online = {{ constant = "2s" }}
"#,
            port = addr.port()
        );
        let outcome = run_quiet(
            scratch.scenario("reconnect", text),
            scratch.out("run"),
            None,
        );
        (outcome, (scratch, counts))
    });
    let s: &Summary = &outcome.summary;
    let ws = &s.metrics["ws_connect"];
    // Ten first opens, and each reopened socket is a sample of its own.
    assert_eq!((ws.attempts, ws.errors), (10, 0), "{ws:?}");
    assert_eq!(ws.count, 10 + ws.reconnects, "{ws:?}");
    // Sockets live ~300 ms and users stay until the run ends: reconnects are all but certain.
    assert!(ws.reconnects > 0, "{ws:?}");
    let tls = s.tls.as_ref().expect("tls");
    assert_eq!(
        tls.handshakes,
        counts.full() + counts.resumed(),
        "{counts:?}"
    );
    // One full handshake per user; its socket and every reopened socket resumed.
    assert_eq!(counts.full(), 10, "{counts:?}");
    assert!(counts.resumed() >= 10 + ws.reconnects, "{counts:?} {ws:?}");
    assert_eq!(tls.resumed, counts.resumed());
}

#[test]
fn a_wrong_ca_is_a_connect_error_naming_the_certificate_problem() {
    let (outcome, (_scratch, counts)) = on_schedule(|| {
        let scratch = Scratch::new();
        let dir = scratch.dir.path();
        let (addr, counts) = server_with_ca(dir);
        // A CA the server's certificate does not come from.
        std::fs::write(dir.join("other.pem"), ca("another CA").pem).expect("write CA");
        let target = format!(
            "url = \"https://localhost:{}\"\nca = \"other.pem\"",
            addr.port()
        );
        let path = scratch.scenario("wrong-ca", health_scenario("wrong-ca", &target, 3));
        let outcome = run_quiet(path, scratch.out("wrong-ca"), None);
        (outcome, (scratch, counts))
    });
    let m = &outcome.summary.metrics["health"];
    assert_eq!(m.count, 3, "{m:?}");
    assert_eq!(m.errors_by_class.get("connect"), Some(&3), "{m:?}");
    let example = &m.error_examples["connect"];
    assert!(
        example.contains("tls handshake with localhost") && example.contains("UnknownIssuer"),
        "{example}"
    );
    assert_eq!(outcome.summary.metrics["tls_handshake"].count, 0);
    assert_eq!(counts.full() + counts.resumed(), 0);
}

#[test]
fn the_certificate_name_comes_from_the_url_host() {
    // The server's certificate names only `localhost`; reached as 127.0.0.1 the name does not
    // match, reached as localhost it does (SNI and the name check use the URL's host).
    let scratch = Scratch::new();
    let dir = scratch.dir.path();
    let ca = ca("name CA");
    std::fs::write(dir.join("ca.pem"), &ca.pem).expect("write CA");
    let (cert, key, _, _) = leaf(&ca, &["localhost"]);
    let (addr, _) = serve_tls(TlsServer::new(vec![cert], key, None).expect("server config"));
    let port = addr.port();
    let by_ip = format!("url = \"https://127.0.0.1:{port}\"\nca = \"ca.pem\"");
    let outcome = run_quiet(
        scratch.scenario("ip", health_scenario("ip", &by_ip, 2)),
        scratch.out("ip"),
        None,
    );
    let m = &outcome.summary.metrics["health"];
    assert_eq!(m.errors_by_class.get("connect"), Some(&2), "{m:?}");
    assert!(m.error_examples["connect"].contains("not valid for name"));
    let by_name = format!("url = \"https://localhost:{port}\"\nca = \"ca.pem\"");
    let outcome = run_quiet(
        scratch.scenario("name", health_scenario("name", &by_name, 2)),
        scratch.out("name"),
        None,
    );
    assert_eq!(outcome.summary.metrics["health"].errors, 0);
}

#[test]
fn insecure_runs_against_an_unknown_ca_with_target_override_and_says_so_in_every_report() {
    let scratch = Scratch::new();
    let (addr, counts) = server_with_ca(scratch.dir.path());
    // The scenario names the built-in target; `--target` points it at the TLS server and the
    // scenario's `insecure = true` applies to it.
    let path = scratch.scenario(
        "insecure",
        health_scenario("insecure", "builtin = {}\ninsecure = true", 4),
    );
    let out = scratch.out("insecure");
    let outcome = run_quiet(
        path,
        out.clone(),
        Some(format!("https://127.0.0.1:{}", addr.port())),
    );
    let s = &outcome.summary;
    assert_eq!(s.metrics["health"].count, 4);
    assert_eq!(s.metrics["health"].errors, 0, "{:?}", s.metrics["health"]);
    let tls = s.tls.as_ref().expect("tls in the summary");
    assert!(!tls.verified);
    assert_eq!(tls.handshakes, 4);
    assert!(counts.full() >= 4);
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("summary.json")).expect("summary.json"),
    )
    .expect("summary.json parses");
    assert_eq!(json["tls"]["verified"], serde_json::Value::Bool(false));
    for file in ["summary.json", "summary.md", "index.html"] {
        let text = std::fs::read_to_string(out.join(file)).expect("report file");
        assert!(text.contains("NOT verified"), "{file} does not say so");
    }
}

#[test]
fn a_plain_target_override_leaves_the_files_tls_settings_unused_and_unreported() {
    let scratch = Scratch::new();
    let target = common::ProbedTarget::start(Knobs::default());
    let path = scratch.scenario(
        "plain",
        health_scenario("plain", "url = \"https://127.0.0.1:9\"\ninsecure = true", 2),
    );
    let out = scratch.out("plain");
    let outcome = run_quiet(path, out.clone(), Some(target.url()));
    assert_eq!(outcome.summary.metrics["health"].errors, 0);
    assert!(outcome.summary.tls.is_none(), "{:?}", outcome.summary.tls);
    for file in ["summary.json", "summary.md", "index.html"] {
        let text = std::fs::read_to_string(out.join(file)).expect("report file");
        assert!(
            !text.contains("NOT verified"),
            "{file} warns of TLS a plain run did not use"
        );
    }
}

#[test]
fn mutual_tls_presents_the_client_certificate_and_fails_clearly_without_it() {
    let scratch = Scratch::new();
    let dir = scratch.dir.path();
    let server_ca = ca("server CA");
    std::fs::write(dir.join("ca.pem"), &server_ca.pem).expect("write CA");
    let client_ca = ca("client CA");
    let (_, _, client_pem, client_key) = leaf(&client_ca, &["user.test"]);
    std::fs::write(dir.join("client.pem"), client_pem).expect("write client cert");
    std::fs::write(dir.join("client.key"), client_key).expect("write client key");
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(client_ca.pem.as_bytes()) {
        roots.add(c.expect("client CA PEM")).expect("client CA");
    }
    let (cert, key, _, _) = leaf(&server_ca, &["localhost"]);
    let (addr, _) = serve_tls(TlsServer::new(vec![cert], key, Some(roots)).expect("mTLS config"));
    let port = addr.port();
    let with_cert = format!(
        "url = \"https://localhost:{port}\"\nca = \"ca.pem\"\ncert = \"client.pem\"\nkey = \"client.key\""
    );
    let outcome = run_quiet(
        scratch.scenario("mtls", health_scenario("mtls", &with_cert, 2)),
        scratch.out("mtls"),
        None,
    );
    let s = &outcome.summary;
    assert_eq!(s.metrics["health"].errors, 0, "{:?}", s.metrics["health"]);
    assert!(s.tls.as_ref().is_some_and(|t| t.client_certificate));
    assert_eq!(s.tls.as_ref().map(|t| t.handshakes), Some(2));
    assert_eq!(s.metrics["tls_handshake"].count, 2);
    // Without a certificate the server refuses. TLS 1.3 says so only after the client's part
    // of the handshake is done, with the first read: that is still the handshake's failure (a
    // connect error that says so), not a handshake completed and a request failed.
    let without = format!("url = \"https://localhost:{port}\"\nca = \"ca.pem\"");
    let outcome = run_quiet(
        scratch.scenario("nocert", health_scenario("nocert", &without, 2)),
        scratch.out("nocert"),
        None,
    );
    let s = &outcome.summary;
    let m = &s.metrics["health"];
    assert_eq!(m.errors, 2, "{m:?}");
    assert_eq!(m.errors_by_class.get("connect"), Some(&2), "{m:?}");
    let example = &m.error_examples["connect"];
    assert_eq!(
        example,
        "tls handshake with localhost: received fatal alert: CertificateRequired"
    );
    // A failed handshake is not a sample.
    assert_eq!(s.tls.as_ref().map(|t| t.handshakes), Some(0), "{:?}", s.tls);
    assert_eq!(s.metrics["tls_handshake"].count, 0);
    // The same for a socket: its upgrade's answer is the first read.
    let socket_only = health_scenario("nocert-ws", &without, 2)
        .replace("http = \"GET /healthz\"", "ws = \"/v1/ws?token=none\"");
    let outcome = run_quiet(
        scratch.scenario("nocert-ws", socket_only),
        scratch.out("nocert-ws"),
        None,
    );
    let s = &outcome.summary;
    let m = &s.metrics["health"];
    assert_eq!(m.errors_by_class.get("connect"), Some(&2), "{m:?}");
    assert_eq!(
        m.error_examples["connect"],
        "tls handshake with localhost: received fatal alert: CertificateRequired"
    );
    assert_eq!(s.metrics["tls_handshake"].count, 0);
}

#[test]
fn validate_names_tls_file_problems_at_their_position() {
    let scratch = Scratch::new();
    let dir = scratch.dir.path();
    std::fs::write(dir.join("empty.pem"), "not a certificate\n").expect("write");
    let text = health_scenario(
        "bad-tls",
        "url = \"https://localhost:9\"\nca = \"missing.pem\"\ncert = \"empty.pem\"",
        1,
    );
    let path = scratch.scenario("bad", &text);
    let err = inrush::compiled::compile(&path, &text, None).expect_err("TLS files are checked");
    let msg = err.to_string();
    assert!(
        msg.contains("missing.pem") && msg.contains("cannot read"),
        "{msg}"
    );
    assert!(
        msg.contains("empty.pem") && msg.contains("no PEM certificate"),
        "{msg}"
    );
    assert!(msg.contains("`key` is missing"), "{msg}");
    // Positions: `ca` is on line 5 of the file, `cert` on line 6.
    assert!(msg.contains(":5:") && msg.contains(":6:"), "{msg}");
    let both = health_scenario(
        "both",
        "url = \"https://localhost:9\"\nca = \"empty.pem\"\ninsecure = true",
        1,
    );
    let err = inrush::compiled::compile(&path, &both, None).expect_err("ca with insecure");
    assert!(err.to_string().contains("keep one of them"), "{err}");
    // A certificate with another certificate's key: each file reads well, the pair does not.
    let issuer = ca("client CA");
    let (_, _, cert_pem, _) = leaf(&issuer, &["a.test"]);
    let (_, _, _, other_key) = leaf(&issuer, &["b.test"]);
    std::fs::write(dir.join("a.pem"), cert_pem).expect("write cert");
    std::fs::write(dir.join("b.key"), other_key).expect("write key");
    let mismatched = health_scenario(
        "pair",
        "url = \"https://localhost:9\"\ninsecure = true\ncert = \"a.pem\"\nkey = \"b.key\"",
        1,
    );
    let err = inrush::compiled::compile(&path, &mismatched, None).expect_err("a mismatched pair");
    let msg = err.to_string();
    // `key` is on line 7 of the file.
    assert!(
        msg.contains("b.key") && msg.contains("does not go with"),
        "{msg}"
    );
    assert!(msg.contains(":7:"), "{msg}");
}
