//! The step loop: conditions, repeats, loops, pauses (think times, staying online), timed steps
//! with their retries, transactions, and where a failure is counted.
//!
//! An operation's latency counts from its intended start: the previous operation's end (plus a
//! think time), never from when the generator got round to it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::clients::OpError;
use crate::compiled::flow::{Action, LoopKind, Step};
use crate::compiled::retry::RetryPolicy;
use crate::metrics::{Counter, ErrorClass, MetricId};
use crate::runtime::actions::Performed;
use crate::runtime::checks::ContactsSeen;
use crate::runtime::{Stop, User};
use crate::swarm::registry::Member;

/// A boxed run of steps: loops nest, so a run of steps is a recursive future.
type StepsFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Stop>> + 'a>>;

impl<'a> User<'a> {
    /// Runs the flow and leaves; `Ok` when every step succeeded, else why the flow stopped.
    pub(super) async fn live(&mut self, flow: &'a crate::compiled::flow::Flow) -> Result<(), Stop> {
        let ended = self.steps(&flow.steps).await;
        if ended.is_ok() {
            self.close_txn(self.intended);
        }
        // Boxed, like a step's work: leaving happens once, at the end, and its state would
        // otherwise be carried by every user for its whole life.
        let left = Box::pin(self.leave(ended == Err(Stop::CutOff))).await;
        // A socket that broke while the user stayed for its acks or the drain is an error
        // counted: the user failed, not completed nor cut off.
        match left {
            Err(Stop::Failed) => left,
            _ => ended,
        }
    }

    fn steps<'s>(&'s mut self, steps: &'a [Step]) -> StepsFuture<'s> {
        Box::pin(async move {
            for step in steps {
                self.step(step).await?;
            }
            Ok(())
        })
    }

    // Not an `async fn`: one keeps its arguments twice (as passed, and moved into its body),
    // bytes in the future of every user waiting inside it; an `async move` block keeps them
    // once. The same for `run_repetition`, `pause_until` and `timed`.
    #[allow(clippy::manual_async_fn)]
    fn step<'s>(
        &'s mut self,
        step: &'a Step,
    ) -> impl Future<Output = Result<(), Stop>> + use<'s, 'a> {
        async move {
            if let Some(cond) = &step.when {
                let w = self.world();
                if !self.scope.holds(cond, &w) {
                    return Ok(());
                }
            }
            // A transaction starts at the intended start of its first step's action (after that
            // step's think time), and ends where a step outside it starts.
            if step.transaction != self.txn.map(|t| t.0) {
                self.close_txn(self.intended);
                self.txn = step.transaction.map(|m| (m, None));
            }
            // Where the user is, for the report of a user the run cuts off: this step until it
            // ends, the outer one again after (a step that stopped the flow stays the place).
            let outer = self.at.replace(step);
            // A burst — a `send` repeated with no pause and no reply awaited — goes out in one write:
            // each frame but the last is fed, and the last one's send writes them all. Nothing in
            // between waits (a region's delay would, so not over a simulated link).
            let burst = step.repeat > 1
                && matches!(step.action, Action::Send(_))
                && step.matcher.is_none()
                && step.think_before.is_none()
                && self.link.is_ideal();
            // A counter, not a range: a range's iterator is 16 bytes in this future, which every
            // user holds around whatever it waits in.
            let mut i = 0;
            // `seq` is the innermost `repeat` or loop's iteration: a step that runs once is
            // neither, and must not hide the iteration of the loop around it.
            let repeats = step.repeat != 1;
            while i < step.repeat {
                if repeats {
                    self.scope.seq.push(i);
                }
                if burst {
                    self.hold_writes(i + 1 < step.repeat);
                }
                let result = self.run_repetition(step).await;
                if repeats {
                    self.scope.seq.pop();
                }
                if burst && (result.is_err() || i + 1 == step.repeat) {
                    self.end_burst().await;
                }
                result?;
                i += 1;
            }
            self.at = outer;
            Ok(())
        }
    }

    fn close_txn(&mut self, end: Duration) {
        // A transaction whose first action never began (a `repeat = 0` step) measured nothing.
        if let Some((metric, Some(start))) = self.txn.take() {
            self.ctx
                .record_in(self.region, |r| r.ok(metric, start, start, end));
        }
    }

    /// One repetition of a step (a step runs `repeat` times): its think time, then its action.
    // Not an `async fn`: its arguments once, not twice, in every waiting user's future (`step`).
    #[allow(clippy::manual_async_fn)]
    fn run_repetition<'s>(
        &'s mut self,
        step: &'a Step,
    ) -> impl Future<Output = Result<(), Stop>> + use<'s, 'a> {
        async move {
            if let Some(think) = &step.think_before {
                let at = self.intended + think.sample(&mut self.scope.rng);
                self.pause_until(at).await?;
            }
            if let Some((_, start @ None)) = &mut self.txn {
                *start = Some(self.intended);
            }
            self.scope.step = Default::default();
            match &step.action {
                Action::Think(d) => {
                    let at = self.intended + d.sample(&mut self.scope.rng);
                    self.pause_until(at).await
                }
                Action::StayOnline(d) => {
                    let until = self.ctx.now() + d.sample(&mut self.scope.rng);
                    // One timer for the whole stay, however many frames interrupt it, on the
                    // worker's clock (smaller than tokio's, and not rounded up to a millisecond).
                    let timer = std::pin::pin!(self.ctx.sleep_until(until));
                    let mut timer: Pin<&mut dyn Future<Output = ()>> = timer;
                    // A stay is a wait, not an operation: it goes on through the drain (the
                    // schedule's end starts no new operation) and ends at its time, or with the
                    // drain.
                    while self.ctx.now() < until && !self.ended() {
                        self.listen(Some(timer.as_mut())).await?;
                    }
                    self.intended = self.ctx.now();
                    if self.ended() {
                        Err(Stop::CutOff)
                    } else {
                        Ok(())
                    }
                }
                Action::Loop {
                    kind,
                    steps,
                    online,
                } => {
                    if !*online {
                        return self.run_loop(step, kind, steps).await;
                    }
                    self.come_online();
                    let result = self.run_loop(step, kind, steps).await;
                    self.go_offline_polling();
                    result
                }
                Action::Close => {
                    self.close_socket(super::socket::Why::Leaving).await;
                    Ok(())
                }
                _ => self.timed(step).await,
            }
        }
    }

    /// A loop, boxed once (loops nest, so a loop is a recursive future) with its iterations
    /// inline: a box per iteration would be an allocation per request of a keep-alive loop.
    fn run_loop<'s>(
        &'s mut self,
        step: &'a Step,
        kind: &'a LoopKind,
        body: &'a [Step],
    ) -> StepsFuture<'s> {
        Box::pin(async move {
            let started = self.ctx.now();
            let intended = self.intended;
            let mut i = 0u64;
            loop {
                let go_on = match kind {
                    LoopKind::Times(n) => i < *n,
                    LoopKind::For(d, max) => self.ctx.now() < started + *d && i < *max,
                    LoopKind::Until(_, max) => i < *max,
                };
                if !go_on {
                    break;
                }
                self.scope.seq.push(i);
                let mut r = Ok(());
                for s in body {
                    r = self.step(s).await;
                    if r.is_err() {
                        break;
                    }
                }
                self.scope.seq.pop();
                r?;
                i += 1;
                if let LoopKind::Until(cond, _) = kind {
                    let w = self.world();
                    if self.scope.holds(cond, &w) {
                        if let Some(m) = step.metric {
                            let end = self.ctx.now();
                            self.ctx
                                .record_in(self.region, |r| r.ok(m, intended, started, end));
                        }
                        return Ok(());
                    }
                }
            }
            if let LoopKind::Until(_, max) = kind {
                // The awaited condition never came within the limit: the loop failed.
                let reason = format!("until condition not met after {max} iterations");
                if let Some(m) = step.metric {
                    self.ctx
                        .record_error(self.region, m, ErrorClass::CheckFailed, &reason);
                }
                return Err(Stop::Failed);
            }
            if let Some(m) = step.metric {
                let end = self.ctx.now();
                self.ctx
                    .record_in(self.region, |r| r.ok(m, intended, started, end));
            }
            Ok(())
        })
    }

    /// Entering an `online` loop: the user is online for the swarm (once it has published).
    fn come_online(&mut self) {
        self.polling += 1;
        if let Some(m) = &self.member {
            self.ctx.shared.registry.go_online(m);
        }
    }

    /// Leaving an `online` loop: the user stops polling, so it is offline unless its socket is
    /// open; left before the end, what is sent to it now is held by the target (pending).
    fn go_offline_polling(&mut self) {
        self.polling = self.polling.saturating_sub(1);
        if self.present() || self.socket.is_some() {
            return;
        }
        if let Some(m) = &self.member {
            self.ctx.shared.registry.go_offline(m);
            if !self.ended() {
                m.left.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Waits until `at` while answering frames; records the timer's lag.
    // Not an `async fn`: its arguments once, not twice, in every waiting user's future (`step`).
    #[allow(clippy::manual_async_fn)]
    fn pause_until<'s>(
        &'s mut self,
        at: Duration,
    ) -> impl Future<Output = Result<(), Stop>> + use<'s, 'a> {
        async move {
            // One timer for the whole pause, however many frames interrupt it: each new one would
            // leave an entry in the worker's clock until the deadline.
            let ctx = self.ctx;
            let mut timer = std::pin::pin!(futures_util::FutureExt::fuse(ctx.sleep_until(at)));
            while self.ctx.now() < at {
                if !self.goes_on() {
                    return Err(Stop::CutOff);
                }
                self.listen(Some(timer.as_mut())).await?;
            }
            // Schedule lag is the generator's lateness. A pause that a reconnect overran ended late
            // because the service dropped the socket (that wait is in the reconnect's sample, and in
            // the next operation's latency, which still counts from `at`), not because of the timer.
            if self.reconnected_at.is_none_or(|t| t < at) {
                let ctx = self.ctx;
                ctx.record_in(self.region, |r| {
                    r.value(MetricId::SCHEDULE_LAG, ctx.now().saturating_sub(at))
                });
            }
            self.intended = at;
            Ok(())
        }
    }

    /// Waits out a retry's backoff while answering frames. A retry is part of its operation,
    /// so it goes on through the drain as an operation in flight does; the drain's end (or an
    /// interrupt) cuts it off. Boxed, as a step's work is: a retry is rare, and inline its wait
    /// would size the future of every step that can retry — the one every idle user holds too.
    fn wait_for_retry<'s>(
        &'s mut self,
        at: Duration,
    ) -> Pin<Box<dyn Future<Output = Backoff> + 's>> {
        Box::pin(async move {
            let timer = std::pin::pin!(self.ctx.sleep_until(at));
            let mut timer: Pin<&mut dyn Future<Output = ()>> = timer;
            while self.ctx.now() < at && !self.ended() {
                match self.listen(Some(timer.as_mut())).await {
                    Ok(()) => {}
                    // The run ended as the socket went (or its state with it): cut off.
                    Err(Stop::CutOff) => return Backoff::CutOff,
                    Err(_) => return Backoff::Lost,
                }
            }
            if self.ended() {
                Backoff::CutOff
            } else {
                Backoff::Waited
            }
        })
    }

    /// Runs a timed step (HTTP, connect, send, receive) with its timeout, checks and captures.
    /// Under a retry policy a failed attempt is waited out and tried again; only the final
    /// outcome is an operation (ok or error), timed from the step's intended start.
    // Not an `async fn`: its arguments once, not twice, in every waiting user's future (`step`).
    #[allow(clippy::manual_async_fn)]
    fn timed<'s>(
        &'s mut self,
        step: &'a Step,
    ) -> impl Future<Output = Result<(), Stop>> + use<'s, 'a> {
        async move {
            let first = std::mem::take(&mut self.admitted);
            if !first && !self.goes_on() {
                return Err(Stop::CutOff);
            }
            // Through the drain a polling user keeps fetching but sends no new message: the send is
            // left out (as an operation the end of the run prevented) and the loop polls on.
            if !self.running() && step.tracked {
                return Ok(());
            }
            let ctx = self.ctx;
            // Which actions are retried is the compiled program's rule, shared with the dry run.
            let policy = if step.action.retried() {
                step.retry.resolve(ctx.plan().retry.as_ref())
            } else {
                None
            };
            self.trace_step_start(step);
            let (result, started) = self.attempts(step, policy).await;
            let ended = ctx.now();
            self.trace_step_end(match &result {
                Ok(Performed::Done) => Ok("ok"),
                Ok(Performed::Skipped) => Ok("skipped"),
                Ok(Performed::CutOff) => Ok("cut_off"),
                Err(e) => Err(e),
            });
            match result {
                Ok(Performed::Skipped) => {
                    ctx.record_in(self.region, |r| r.add(Counter::SendsSkipped, 1));
                    self.intended = ended;
                    Ok(())
                }
                Ok(Performed::CutOff) => Err(Stop::CutOff),
                Ok(Performed::Done) => {
                    if let Some(m) = step.metric {
                        ctx.record_in(self.region, |r| r.ok(m, self.intended, started, ended));
                    }
                    self.intended = ended;
                    if !step.publish.is_empty() && self.member.is_none() {
                        self.publish(step);
                    }
                    Ok(())
                }
                Err(e) => {
                    let counted = self.failure_metric(step);
                    if let Some(m) = counted {
                        ctx.record_error(self.region, m, e.class, &e.reason);
                    } else if let Some(i) = step.unnamed_errors {
                        ctx.record_in(self.region, |r| r.count(i));
                    }
                    // The flow ends here, and its open transaction with it: failed, as a k6 group or
                    // a Gatling group with a failed request is (unless the step's error already is
                    // the transaction's, for a step without a name of its own).
                    if let Some((txn, _)) = self.txn.take() {
                        if counted != Some(txn) {
                            ctx.record_error(self.region, txn, e.class, &e.reason);
                        }
                    }
                    Err(Stop::Failed)
                }
            }
        }
    }

    /// Tries a timed step until it succeeds, its retry policy gives up or the run stops: the
    /// final attempt's outcome and start.
    async fn attempts(
        &mut self,
        step: &'a Step,
        policy: Option<&RetryPolicy>,
    ) -> (Result<Performed, OpError>, Duration) {
        let ctx = self.ctx;
        let mut attempt = 0u32;
        loop {
            let started = ctx.now();
            self.checked.clear();
            if step.action.retried() {
                if let Some(m) = self.failure_metric(step) {
                    ctx.record_in(self.region, |r| r.attempt(m));
                }
            }
            // Counted against `max_inflight` while it runs (not while it waits to retry).
            let inflight = ctx.inflight();
            let perform = self.perform(step);
            let result = match ctx.within_from(started, step.timeout, perform).await {
                Some(r) => r,
                None => Err(OpError::new(
                    ErrorClass::Timeout,
                    "no answer within the step's timeout",
                )),
            };
            drop(inflight);
            self.record_http_bytes(step);
            let retry = match (&result, policy) {
                (Err(e), Some(p)) if attempt + 1 < p.attempts => {
                    p.reason(e).map(|reason| (p, reason, e.retry_after))
                }
                _ => None,
            };
            let Some((p, reason, retry_after)) = retry else {
                self.record_checks();
                return (result, started);
            };
            // The server's Retry-After wins over the backoff, within the step's timeout.
            let wait = match retry_after {
                Some(ra) => ra.min(step.timeout),
                None => p.backoff.delay(attempt, &mut self.scope.rng),
            };
            match self.wait_for_retry(ctx.now() + wait).await {
                Backoff::Waited => {}
                // The socket went meanwhile: the attempt that failed stays the final one.
                Backoff::Lost => {
                    self.record_checks();
                    return (result, started);
                }
                Backoff::CutOff => return (Ok(Performed::CutOff), started),
            }
            if let Some(m) = self.failure_metric(step) {
                ctx.record_in(self.region, |r| r.retry(m, reason));
            }
            attempt += 1;
        }
    }

    /// A step that publishes: the user joins the swarm (online if its socket is up or it polls
    /// in an `online` loop).
    fn publish(&mut self, step: &Step) {
        let w = self.world();
        let vars = step
            .publish
            .iter()
            .map(|(n, e)| (n.clone(), self.scope.eval(e, &w)))
            .collect();
        let member = Arc::new(Member::new(self.scope.index, self.cohort, vars));
        let registry = &self.ctx.shared.registry;
        registry.publish(member.clone());
        if self.socket.is_some() || self.present() {
            registry.go_online(&member);
        }
        self.member = Some(member);
    }

    /// Where a step's failures (and retries) are counted: its metric, else its transaction's,
    /// else (a plain send) the metric of the step that opened the socket; none for an unnamed
    /// request (its failures go to `counts.unnamed_errors`).
    pub(super) fn failure_metric(&self, step: &Step) -> Option<MetricId> {
        // A request is not the socket's business: an unnamed one counts apart (`unnamed_errors`).
        let socket_metric = match step.action {
            Action::Http(_) => None,
            _ => self.socket.as_ref().and_then(|s| s.step.metric),
        };
        step.metric.or(self.txn.map(|t| t.0)).or(socket_metric)
    }

    /// The TLS handshakes the user's connections did since the last call, into the
    /// `tls_handshake` metric and the `tls_resumed` count. Called after every connect (a
    /// request, a socket opened or reopened), so none waits long and none is missed.
    pub(super) fn record_tls_handshakes(&self) {
        let (Some(tls), Some((metric, resumed))) = (self.http.tls(), self.ctx.plan().catalog.tls())
        else {
            return;
        };
        tls.take_handshakes(|h| {
            self.ctx.record_in(self.region, |r| {
                r.value(metric, h.took);
                if h.resumed {
                    r.count(resumed);
                }
            });
        });
    }

    /// The checks the step's final attempt judged its answer by, into the run's `checks`.
    fn record_checks(&mut self) {
        let region = self.region;
        let ctx = self.ctx;
        for (id, passed) in self.checked.take() {
            ctx.record_in(region, |r| r.check(id, passed));
        }
    }

    /// The bytes the user's HTTP connections wrote and read since the last call (this
    /// attempt's request and response, or nothing), under the step's metric.
    fn record_http_bytes(&self, step: &Step) {
        let (sent, received) = self.http.take_bytes();
        if sent + received > 0 {
            let m = self.failure_metric(step);
            self.ctx
                .record_in(self.region, |r| r.bytes(m, sent, received));
        }
    }

    /// What a `contains_all` found, into the run's counts.
    pub(super) fn record_contacts(&self, seen: Option<ContactsSeen>) {
        if let Some(seen) = seen {
            self.ctx.record_in(self.region, |r| {
                r.add(Counter::ContactsExpected, seen.expected);
                r.add(Counter::ContactsMissing, seen.missing);
            });
        }
    }
}

/// How a retry's backoff ended.
enum Backoff {
    Waited,
    /// The user's socket was lost meanwhile.
    Lost,
    /// The run ended (the drain is over, or it was interrupted).
    CutOff,
}

#[cfg(test)]
mod tests {
    use crate::metrics::{ErrorClass, MetricId};
    use crate::runtime::tests::{errors, metric, run_one};

    /// µs, as the histograms hold latencies.
    const MS: u64 = 1000;

    #[test]
    fn a_retried_request_is_one_operation_timed_from_its_first_attempts_start() {
        let (plan, ended, rec) = run_one(
            r#"
[[flows.f.steps]]
name = "flaky"
http = "GET /flaky"
retry = { attempts = 3, on = [503], backoff = "100ms", jitter = "none" }
"#,
        );
        assert!(ended.completed);
        let r = rec.metric(metric(&plan, "flaky"));
        // Three attempts, two retries (not errors), one operation: the final attempt's success.
        assert_eq!(
            (r.attempts, r.retry_count(), r.count(), r.error_count()),
            (3, 2, 1, 0)
        );
        // Its latency counts from the step's intended start, so it holds both backoffs (100 ms,
        // then 200 ms without jitter); the service time is the last attempt's alone (a loopback
        // request: far below the 300 ms, with room for a loaded machine).
        assert!(r.latency.min() >= 300 * MS, "{}", r.latency.min());
        assert!(r.service.max() < 300 * MS, "{}", r.service.max());
    }

    #[test]
    fn exhausted_attempts_are_one_error_of_the_steps_metric() {
        let (plan, ended, rec) = run_one(
            r#"
[[flows.f.steps]]
name = "refused"
http = "GET /status/503"
retry = { attempts = 3, on = [503], backoff = "5ms", jitter = "none" }
"#,
        );
        assert!(!ended.completed);
        let m = metric(&plan, "refused");
        let r = rec.metric(m);
        assert_eq!((r.attempts, r.retry_count(), r.count()), (3, 2, 1));
        assert_eq!(errors(&rec, m, ErrorClass::HttpStatus), 1);
    }

    #[test]
    fn a_think_time_moves_the_next_steps_intended_start_and_a_transaction_spans_both() {
        let (plan, ended, rec) = run_one(
            r#"
[[flows.f.steps]]
name = "first"
http = "GET /status/200"
transaction = "both"

[[flows.f.steps]]
name = "second"
http = "GET /status/200"
think = { constant = "200ms" }
transaction = "both"
"#,
        );
        assert!(ended.completed);
        // The second step is timed from the end of the pause, not from the end of the first
        // (which would put the 200 ms pause in its latency).
        let second = rec.metric(metric(&plan, "second"));
        assert_eq!(second.count(), 1);
        assert!(second.latency.max() < 200 * MS, "{}", second.latency.max());
        // The transaction from the first step's intended start to the second's end: the pause is
        // in it, once.
        let both = rec.metric(metric(&plan, "both"));
        assert_eq!((both.count(), both.error_count()), (1, 0));
        assert!(both.latency.min() >= 200 * MS, "{}", both.latency.min());
        assert!(both.latency.max() < 400 * MS, "{}", both.latency.max());
        // The pause recorded the timer's lag: the arrival's sample and the pause's.
        assert_eq!(rec.metric(MetricId::SCHEDULE_LAG).latency.len(), 2);
    }

    #[test]
    fn an_unnamed_request_is_untimed_and_its_failure_is_counted_apart() {
        let (plan, ended, rec) = run_one(
            r#"
[[flows.f.steps]]
http = "GET /status/200"

[[flows.f.steps]]
name = "timed"
http = "GET /status/200"

[[flows.f.steps]]
http = "GET /status/503"
"#,
        );
        assert!(!ended.completed, "the failed request ends the flow");
        // Only the named step has a metric: the unnamed ones are not timed anywhere.
        let timed = metric(&plan, "timed");
        let recorded: Vec<&str> = plan
            .catalog
            .all()
            .filter(|(m, _)| rec.metric(*m).count() > 0)
            .map(|(_, name)| name)
            .collect();
        assert!(recorded.contains(&"timed"), "{recorded:?}");
        assert_eq!(rec.metric(timed).count(), 1);
        let steps: Vec<&str> = recorded
            .iter()
            .copied()
            .filter(|n| {
                plan.catalog
                    .id(n)
                    .is_some_and(|m| m.index() >= timed.index())
            })
            .collect();
        assert_eq!(steps, ["timed"], "no other step metric has a sample");
        // The failure is not lost: it is the unnamed requests' count.
        let i = plan
            .catalog
            .counters()
            .iter()
            .position(|c| c == "unnamed_errors")
            .expect("the count exists");
        assert_eq!(rec.named(i), 1);
    }

    #[test]
    fn a_failed_step_fails_its_transaction() {
        let (plan, ended, rec) = run_one(
            r#"
[[flows.f.steps]]
name = "first"
http = "GET /status/200"
transaction = "pair"

[[flows.f.steps]]
name = "second"
http = "GET /status/503"
transaction = "pair"
"#,
        );
        assert!(!ended.completed);
        // The step's error is the step's, and the transaction it ended is an error too (the
        // issue found it counted as neither: count 0, errors 0, "nothing observed").
        let second = metric(&plan, "second");
        assert_eq!(errors(&rec, second, ErrorClass::HttpStatus), 1);
        let pair = metric(&plan, "pair");
        assert_eq!(errors(&rec, pair, ErrorClass::HttpStatus), 1);
        assert_eq!(rec.metric(pair).error_count(), 1);
        assert_eq!(rec.metric(metric(&plan, "first")).count(), 1);
    }

    #[test]
    fn a_transaction_leaves_out_the_think_before_its_first_step_and_spans_a_loop() {
        let (plan, ended, rec) = run_one(
            r#"
[[flows.f.steps]]
name = "before"
http = "GET /status/200"

[[flows.f.steps]]
name = "first"
http = "GET /status/200"
think = { constant = "300ms" }
transaction = "pair"

[[flows.f.steps]]
name = "second"
http = "GET /status/200"
transaction = "pair"

[[flows.f.steps]]
transaction = "polling"
loop = { times = 3, steps = [
  { name = "poll", http = "GET /status/200" },
  { think = { constant = "100ms" } },
] }

[[flows.f.steps]]
name = "after"
http = "GET /status/200"
"#,
        );
        assert!(ended.completed);
        // Two loopback requests: far below the 300 ms pause that came before them, which the
        // issue measured inside the transaction (501 ms for 0.9 ms of steps).
        let pair = rec.metric(metric(&plan, "pair"));
        assert_eq!((pair.count(), pair.error_count()), (1, 0));
        assert!(pair.latency.max() < 300 * MS, "{}", pair.latency.max());
        // The loop's transaction closes after its last iteration, not at its first inner step
        // (which the issue measured as 0.0 ms): it holds the three 100 ms pauses.
        let polling = rec.metric(metric(&plan, "polling"));
        assert_eq!((polling.count(), polling.error_count()), (1, 0));
        assert!(
            polling.latency.min() >= 300 * MS,
            "{}",
            polling.latency.min()
        );
        assert_eq!(rec.metric(metric(&plan, "poll")).count(), 3);
        assert_eq!(rec.metric(metric(&plan, "after")).count(), 1);
    }
}
