//! What a timed step does, one attempt at a time: an HTTP request (with its checks and
//! captures), a socket's opening, a message sent, a frame awaited. `steps` times the attempts,
//! retries them and records the outcome; these only do the work.

use crate::clients::http::Response;
use crate::clients::retry_after::parse_retry_after;
use crate::clients::OpError;
use crate::compiled::flow::{Action, Frame, Http, Step};
use crate::metrics::{Counter, ErrorClass, MetricId};
use crate::runtime::checks;
use crate::runtime::User;
use crate::swarm::blocks::Lent;

/// One attempt at a timed step's action, in a block of the worker's (`User::perform`).
pub(super) type Attempt<'a> = Lent<'a, Result<Performed, OpError>>;

/// What an attempt at a timed step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Performed {
    Done,
    /// Not sent: it names `swarm.online.*` and nobody else was online. Neither a success nor an
    /// error: counted as skipped.
    Skipped,
    /// Cut off by the run's end while it waited to retry: neither a success nor an error (its
    /// outcome never came), and the user is cut off.
    CutOff,
}

impl<'a> User<'a> {
    /// One attempt at a timed step's work, each action's future alone and out of the user's
    /// own: a request's or handshake's state is large and lives only while it runs (inline, it
    /// would size every user's future for its whole life, idle or not). It goes into a block
    /// the worker lends for the attempt and takes back when it ends (`swarm::blocks`), not a
    /// box allocated and freed per attempt; a future larger than a block is boxed.
    pub(super) fn perform<'s>(&'s mut self, step: &'a Step) -> Attempt<'s> {
        let blocks = &self.ctx.scratch.blocks;
        match &step.action {
            Action::Http(h) => blocks.lend(|| self.http_step(step, h)),
            Action::WsConnect { .. } => blocks
                .lend(|| async move { self.open_socket(step).await.map(|()| Performed::Done) }),
            Action::Send(frame) => blocks.lend(|| self.send_message(step, frame)),
            Action::Receive => match &step.matcher {
                Some(matcher) => blocks.lend(|| async move {
                    self.receive(step, matcher).await.map(|()| Performed::Done)
                }),
                None => blocks.lend(|| std::future::ready(Ok(Performed::Done))),
            },
            _ => blocks.lend(|| std::future::ready(Ok(Performed::Done))),
        }
    }

    /// An HTTP step: the request, its checks, its captures; the message it sends (tracked once
    /// the target accepted it: the step succeeded) and those its response delivers.
    async fn http_step(&mut self, step: &'a Step, h: &Http) -> Result<Performed, OpError> {
        // In a block: the world is not kept across the request (the attempt's future is
        // boxed per request and kept under 1 KiB; see `HttpClient::request`).
        let req = {
            let w = self.world();
            self.scope.render_request(h, &w)
        };
        if self.scope.step.no_peer {
            return Ok(Performed::Skipped);
        }
        // When the message this request carries went out: read only when there may be one (its
        // id rendered, or a check or capture that may name it), not a clock read per request.
        let may_name_msg = step.expect.is_some() || step.fail_on.is_some();
        let started = (self.scope.step.msg.is_some() || may_name_msg || !step.captures.is_empty())
            .then(|| self.ctx.now());
        self.trace_request(&h.method, &req.path, &req.headers, req.body.as_ref());
        // The arguments in a block, not kept across the request (the future's size, above).
        let resp = {
            let endpoint = &self.ctx.shared.endpoint;
            let body = req.body.as_ref().map(|(t, b)| (*t, b.as_slice()));
            let (path, headers) = (&req.path, &req.headers);
            let link = &mut self.link;
            self.http
                .request(endpoint, link, &h.method, path, headers, body)
        }
        .await;
        self.record_tls_handshakes();
        let resp = resp?;
        self.trace_response(&resp);
        let w = self.world();
        if let Some(f) = &step.fail_on {
            let text = String::from_utf8_lossy(&resp.body);
            let json = (!f.json.is_empty())
                .then(|| serde_json::from_slice(&resp.body).ok())
                .flatten();
            if let Some(e) = checks::failed_on(f, &text, json.as_ref(), &mut self.scope, &w) {
                return Err(e);
            }
        }
        let expect = step.expect.as_ref();
        let json = checks::reads_json(expect, &step.captures, h.deliveries.is_some());
        let (json, seen) =
            checks::check_response(expect, &resp, json, &mut self.scope, &w, &mut self.checked)
                .map_err(|e| with_retry_after(e, &resp))?;
        self.record_contacts(seen);
        let text = if checks::reads_text(&step.captures) || h.deliveries.is_some() {
            String::from_utf8_lossy(&resp.body)
        } else {
            std::borrow::Cow::Borrowed("")
        };
        checks::capture(
            &step.captures,
            Some(&resp),
            &text,
            json.as_ref(),
            &mut self.scope,
            &w,
        );
        if let (Some((seq, intended)), Some(started)) = (self.scope.step.msg, started) {
            self.record_sent(seq, intended, started, false);
            if h.ack {
                let now = self.ctx.now();
                self.ctx.record_in(self.region, |r| {
                    r.ok(MetricId::MESSAGE_ACK, intended, started, now);
                    r.add(Counter::MessagesAcked, 1);
                });
            }
        }
        if let Some(d) = &h.deliveries {
            self.record_deliveries(d, &text, json.as_ref());
        }
        self.http.reuse(resp);
        Ok(Performed::Done)
    }

    /// A `send` step: the frame out (tracked when it carries a message id), then the reply its
    /// `expect` waits for.
    async fn send_message(&mut self, step: &'a Step, frame: &Frame) -> Result<Performed, OpError> {
        let w = self.world();
        let frame = self.scope.render_frame(frame, &w);
        if self.scope.step.no_peer {
            // Nobody else is online to talk to: this message is not sent; the flow goes on.
            return Ok(Performed::Skipped);
        }
        let started = self.ctx.now();
        if self.socket.is_none() {
            return Err(OpError::new(
                ErrorClass::Protocol,
                "send before the socket was opened",
            ));
        }
        // On its way out through the region's network.
        self.link.one_way().await;
        self.send_frame(frame).await?;
        if let Some((seq, intended)) = self.scope.step.msg {
            // Its ack is awaited only where the socket's rules say what an ack is.
            let acks = self.socket.as_ref().is_some_and(|s| s.acks);
            self.record_sent(seq, intended, started, acks);
        }
        if let Some(matcher) = &step.matcher {
            self.receive(step, matcher).await?;
        }
        Ok(Performed::Done)
    }
}

/// A failed status check carries the response's status and `Retry-After` wait, for retries.
fn with_retry_after(e: OpError, resp: &Response) -> OpError {
    if e.class != ErrorClass::HttpStatus {
        return e;
    }
    let retry_after = resp
        .headers
        .get_str("retry-after")
        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
    e.with_status(resp.status, retry_after)
}
