//! The dashboard's HTTP side: `GET /` the page, `GET /events` the server-sent events, `GET
//! /state` everything so far as one JSON document, and once the run has ended `GET /report/NAME`
//! the run directory's files, read-only. Handlers only copy what the sink appended.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;

use super::{DashboardSink, End, Setup, Shared};
use crate::error::Error;
use crate::report::summary::Summary;

/// The page: HTML, inline CSS (index.html's stylesheet and the page's own) and inline JS.
const PAGE: &str = include_str!("page.html");

/// The listening dashboard; serves until dropped (or the run's runtime ends).
pub struct Dashboard {
    shared: Arc<Shared>,
    addr: SocketAddr,
    duration_s: f64,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct App {
    shared: Arc<Shared>,
    page: Arc<str>,
}

impl Dashboard {
    /// Listens on `addr` before the run starts: an address that cannot be bound is the user's
    /// error (exit 2), found before anything is sent.
    pub async fn listen(addr: &str, setup: &Setup) -> Result<Dashboard, Error> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Usage(format!("--dashboard {addr}: cannot listen: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Usage(format!("--dashboard {addr}: {e}")))?;
        let shared = Arc::new(Shared::new(setup));
        let page = PAGE.replace("/*STYLE*/", crate::report::html::style::STYLE);
        let app = App {
            shared: shared.clone(),
            page: page.into(),
        };
        let router = axum::Router::new()
            .route("/", axum::routing::get(page_handler))
            .route("/events", axum::routing::get(events))
            .route("/state", axum::routing::get(state))
            .route("/report/", axum::routing::get(report_index))
            .route("/report/{name}", axum::routing::get(report_file))
            .with_state(app);
        let server = tokio::spawn(async move {
            // A failing accept loop ends the dashboard, never the run.
            let _ = axum::serve(listener, router).await;
        });
        Ok(Dashboard {
            shared,
            addr,
            duration_s: setup.duration_s,
            server,
        })
    }

    /// The address it listens on (the port the OS chose for `:0`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The sink that appends each interval's event.
    pub fn sink(&self) -> DashboardSink {
        DashboardSink {
            shared: self.shared.clone(),
            duration_s: self.duration_s,
        }
    }

    /// Once the report is written: the `end` event (verdict, summary, report path), and the run
    /// directory served at `/report/`.
    pub fn end(&self, summary: &Summary, dir: &Path) {
        let data = End::json(summary, dir);
        self.shared.board().report_dir = Some(dir.to_path_buf());
        self.shared.push(super::END, data);
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The page with the state so far inside it, so it paints at once (and a browser's
/// `--dump-dom` sees the values without waiting for the event stream, which never ends while the
/// run goes on); `</` is escaped so the JSON cannot close its script element.
async fn page_handler(State(app): State<App>) -> impl IntoResponse {
    let state = app.shared.state().replace("</", "<\\/");
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        app.page.replacen("/*STATE*/", &state, 1),
    )
}

async fn state(State(app): State<App>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        app.shared.state(),
    )
}

/// The event a reconnecting EventSource resumes after: `Last-Event-ID`, the id of the last
/// event it received (a missing or unreadable one starts from the first event).
fn resume_after(headers: &HeaderMap) -> Option<usize> {
    headers
        .get("last-event-id")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `GET /events?from=N`: where a first connection starts (the page passes the `next` of the
/// state it was served with); a reconnection's `Last-Event-ID` wins over it.
#[derive(serde::Deserialize)]
struct From {
    from: Option<usize>,
}

async fn events(
    State(app): State<App>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<From>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let from = query.from.unwrap_or(0);
    let next = resume_after(&headers).map_or(from, |id| id.saturating_add(1));
    let changes = app.shared.events.subscribe();
    let stream = futures_util::stream::unfold(
        (app.shared, next, changes),
        |(shared, next, mut changes)| async move {
            loop {
                let event = shared.board().events.get(next).map(|e| {
                    SseEvent::default()
                        .id(next.to_string())
                        .event(e.kind)
                        .data(&*e.data)
                });
                if let Some(event) = event {
                    return Some((Ok(event), (shared, next + 1, changes)));
                }
                // Nothing new: wait for the sink's next event (the sender lives as long as the
                // board, so this ends only with the server).
                changes.changed().await.ok()?;
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Whether `name` is a file of the run directory the dashboard serves: a plain name (no path,
/// no hidden or partial file) of a report file.
pub(super) fn servable(name: &str) -> bool {
    !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && content_type(name).is_some()
}

fn content_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "xml" => "application/xml",
        "md" | "hlog" | "txt" => "text/plain; charset=utf-8",
        "jsonl" => "application/x-ndjson",
        _ => return None,
    })
}

async fn report_index(state: State<App>) -> Response {
    report(state, crate::report::files::HTML).await
}

async fn report_file(
    state: State<App>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    report(state, &name).await
}

/// A file of the run directory, once the run has ended; 404 before that and for anything else.
async fn report(State(app): State<App>, name: &str) -> Response {
    let dir = app.shared.board().report_dir.clone();
    let (Some(dir), Some(kind)) = (dir, content_type(name).filter(|_| servable(name))) else {
        return (StatusCode::NOT_FOUND, "not served\n").into_response();
    };
    match tokio::fs::read(dir.join(name)).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, kind)], bytes).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "no such report file\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_report_file_names_are_served() {
        for ok in [
            "index.html",
            "summary.json",
            "latency.svg",
            "latency.png",
            "latency.hlog",
        ] {
            assert!(servable(ok), "{ok}");
        }
        for no in [
            "../summary.json",
            ".timeline.spool.jsonl",
            ".partial-index.html",
            "a/b.html",
            "run.sh",
            "index",
            "%2e%2e",
        ] {
            assert!(!servable(no), "{no}");
        }
    }

    #[test]
    fn last_event_id_resumes_after_that_event() {
        let mut h = HeaderMap::new();
        assert_eq!(resume_after(&h), None);
        h.insert("last-event-id", "7".parse().expect("header"));
        assert_eq!(resume_after(&h), Some(7));
        h.insert("last-event-id", "x".parse().expect("header"));
        assert_eq!(resume_after(&h), None);
    }
}
