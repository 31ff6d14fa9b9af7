//! The simulated SMS gateway and the test SMS sink behind `GET /v1/test/sms/{phone}`.
//!
//! Each SMS is delivered `sms_delay` after its slot; the gateway hands out at most `sms_rate`
//! slots per second: delivery time = max(now, next free slot) + sms_delay, and the next free slot
//! advances by 1/rate. The backlog is bounded (outstanding messages and seconds of queue).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::state::{bump, lock, stopped, Shared, VERIFICATION_TTL};

/// At most this many SMS may wait in the gateway.
const MAX_OUTSTANDING: usize = 100_000;
/// At most this much queueing delay (on top of `sms_delay`).
const MAX_BACKLOG: Duration = Duration::from_secs(60);

/// What the sink knows about one phone.
#[derive(Debug, Clone)]
pub(crate) struct Inbox {
    /// Sequence number of the latest code sent to this phone (0 = none yet).
    pub requested: u64,
    /// The latest delivered code with its sequence number.
    pub delivered: Option<(u64, String)>,
    touched: Instant,
}

impl Inbox {
    /// The latest requested code, once it has been delivered.
    pub fn latest_delivered(&self) -> Option<&str> {
        match &self.delivered {
            Some((seq, code)) if *seq >= self.requested => Some(code),
            _ => None,
        }
    }
}

pub(crate) struct SmsGateway {
    next_free: Mutex<Instant>,
    outstanding: AtomicUsize,
    seq: AtomicU64,
    inbox: Mutex<HashMap<String, watch::Sender<Inbox>>>,
}

/// The gateway is full; retry after this many seconds.
pub(crate) struct Overloaded(pub u64);

impl SmsGateway {
    pub fn new(now: Instant) -> SmsGateway {
        SmsGateway {
            next_free: Mutex::new(now),
            outstanding: AtomicUsize::new(0),
            seq: AtomicU64::new(1),
            inbox: Mutex::new(HashMap::new()),
        }
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// Reserves a delivery time for one SMS, or says the gateway is overloaded.
    fn reserve(
        &self,
        rate: Option<f64>,
        delay: Duration,
        now: Instant,
    ) -> Result<Instant, Overloaded> {
        let mut next = lock(&self.next_free);
        let slot = (*next).max(now);
        let backlog = slot - now;
        if backlog > MAX_BACKLOG || self.outstanding() >= MAX_OUTSTANDING {
            let wait = (backlog.saturating_sub(MAX_BACKLOG).as_secs_f64().ceil() as u64).max(1);
            return Err(Overloaded(wait));
        }
        if let Some(rate) = rate {
            let gap = Duration::try_from_secs_f64(1.0 / rate)
                .unwrap_or(Duration::MAX)
                .min(Duration::from_secs(3600));
            *next = slot + gap;
        }
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        Ok(slot.checked_add(delay).unwrap_or(slot))
    }

    /// Records that a new code is on its way to `phone`; returns its sequence number.
    fn expect(&self, phone: &str, now: Instant) -> u64 {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut inbox = lock(&self.inbox);
        let tx = inbox
            .entry(phone.to_owned())
            .or_insert_with(|| watch::Sender::new(empty_inbox(now)));
        tx.send_modify(|i| {
            i.requested = i.requested.max(seq);
            i.touched = now;
        });
        seq
    }

    fn deliver(&self, phone: &str, seq: u64, code: String) {
        self.outstanding.fetch_sub(1, Ordering::Relaxed);
        if let Some(tx) = lock(&self.inbox).get(phone) {
            tx.send_if_modified(|i| {
                if i.delivered.as_ref().is_some_and(|(d, _)| *d >= seq) {
                    return false;
                }
                i.delivered = Some((seq, code));
                i.touched = Instant::now();
                true
            });
        }
    }

    /// Watches a phone's inbox (creating an empty one if needed; see [`Self::release`]).
    pub fn subscribe(&self, phone: &str) -> watch::Receiver<Inbox> {
        lock(&self.inbox)
            .entry(phone.to_owned())
            .or_insert_with(|| watch::Sender::new(empty_inbox(Instant::now())))
            .subscribe()
    }

    /// Drops an inbox that never received anything and nobody watches (after a sink timeout).
    pub fn release(&self, phone: &str) {
        let mut inbox = lock(&self.inbox);
        if inbox
            .get(phone)
            .is_some_and(|tx| tx.receiver_count() == 0 && tx.borrow().requested == 0)
        {
            inbox.remove(phone);
        }
    }

    /// Forgets a phone's inbox (its owner has verified).
    pub fn forget(&self, phone: &str) {
        lock(&self.inbox).remove(phone);
    }

    /// Drops inboxes untouched for longer than a verification lives.
    pub fn sweep(&self, now: Instant) {
        lock(&self.inbox).retain(|_, tx| {
            tx.receiver_count() > 0 || now.duration_since(tx.borrow().touched) < VERIFICATION_TTL
        });
    }
}

fn empty_inbox(now: Instant) -> Inbox {
    Inbox {
        requested: 0,
        delivered: None,
        touched: now,
    }
}

/// Sends `code` to `phone` through the gateway: reserves a slot and spawns the delivery.
pub(crate) fn send_code(shared: &Arc<Shared>, phone: &str, code: String) -> Result<(), Overloaded> {
    let now = Instant::now();
    let deliver_at = match shared
        .sms
        .reserve(shared.knobs.sms_rate, shared.knobs.sms_delay, now)
    {
        Ok(at) => at,
        Err(e) => {
            bump(&shared.stats.sms_rejected);
            return Err(e);
        }
    };
    let seq = shared.sms.expect(phone, now);
    bump(&shared.stats.sms_sent);
    let shared = shared.clone();
    let phone = phone.to_owned();
    tokio::spawn(async move {
        let mut shutdown = shared.shutdown_signal();
        tokio::select! {
            _ = tokio::time::sleep_until(deliver_at.into()) => {
                shared.sms.deliver(&phone, seq, code);
                bump(&shared.stats.sms_delivered);
            }
            _ = stopped(&mut shutdown) => {
                shared.sms.outstanding.fetch_sub(1, Ordering::Relaxed);
            }
        }
    });
    Ok(())
}
