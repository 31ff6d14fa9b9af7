//! The messenger's in-memory state. Every map sits behind a std `Mutex` held only for short,
//! non-async critical sections (never across `.await`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::RngExt;
use tokio::sync::watch;

use super::knobs::{stall_end, Knobs};
use super::sms::SmsGateway;
use super::ws::Hub;

/// A pending verification lives this long.
pub(crate) const VERIFICATION_TTL: Duration = Duration::from_secs(600);
/// At most this many verifications may be pending; beyond, registration answers 503.
pub(crate) const MAX_PENDING: usize = 1_000_000;
/// Wrong codes allowed before a verification is thrown away.
const MAX_ATTEMPTS: u32 = 5;

/// Locks a mutex, shrugging off poisoning (no critical section leaves state half-updated).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Random lowercase hex of `bytes` random bytes.
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random_range(0..=255u8)))
        .collect()
}

/// `^\+[0-9]{6,15}$`
pub(crate) fn valid_phone(phone: &str) -> bool {
    phone
        .strip_prefix('+')
        .is_some_and(|d| (6..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

pub(crate) fn user_id_string(id: u64) -> String {
    format!("u{id}")
}

/// Everything the handlers share.
pub(crate) struct Shared {
    pub knobs: Knobs,
    /// Stall phases are measured from here.
    pub started: Instant,
    pub users: Mutex<Users>,
    /// Highest user number handed out; user ids are `u1..=u{registered}`.
    pub registered: AtomicU64,
    pub verifications: Mutex<Verifications>,
    pub verify_bucket: Mutex<TokenBucket>,
    pub sms: SmsGateway,
    pub hub: Hub,
    pub stats: Stats,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    pub fn new(knobs: Knobs) -> Shared {
        let now = Instant::now();
        Shared {
            verify_bucket: Mutex::new(TokenBucket::new(knobs.verify_capacity, now)),
            sms: SmsGateway::new(now),
            knobs,
            started: now,
            users: Mutex::new(Users::default()),
            registered: AtomicU64::new(0),
            verifications: Mutex::new(Verifications {
                pending: HashMap::new(),
                last_sweep: now,
            }),
            hub: Hub::new(),
            stats: Stats::default(),
            shutdown: watch::Sender::new(false),
        }
    }

    /// If now is inside a stall, sleeps until it ends.
    pub async fn wait_out_stall(&self) {
        let Some(every) = self.knobs.stall_every else {
            return;
        };
        if let Some(end) = stall_end(self.started.elapsed(), every, self.knobs.stall_for) {
            tokio::time::sleep_until((self.started + end).into()).await;
        }
    }

    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

/// Resolves once the server is shutting down (or the signal is gone).
pub(crate) async fn stopped(signal: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send; drop it here rather than across an await.
    let _ = signal.wait_for(|stop| *stop).await.is_ok();
}

impl Shared {
    /// The user behind a bearer token.
    pub fn user_for_token(&self, token: &str) -> Option<u64> {
        lock(&self.users).by_token.get(token).copied()
    }

    /// Whether `user_id` (as `u<n>`) names a registered user; returns its number.
    pub fn parse_user_id(&self, user_id: &str) -> Option<u64> {
        let digits = user_id.strip_prefix('u')?;
        if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u64 = digits.parse().ok()?;
        (n >= 1 && n <= self.registered.load(Ordering::Acquire)).then_some(n)
    }
}

#[derive(Default)]
pub(crate) struct Users {
    pub by_phone: HashMap<String, u64>,
    pub by_token: HashMap<String, u64>,
}

pub(crate) struct Pending {
    pub phone: String,
    pub code: String,
    pub created: Instant,
    pub wrong_attempts: u32,
}

pub(crate) enum VerifyOutcome {
    Ok(String),
    Unknown,
    WrongCode,
}

pub(crate) struct Verifications {
    pub pending: HashMap<String, Pending>,
    pub last_sweep: Instant,
}

impl Verifications {
    /// Drops expired verifications, at most every 10 s (amortised O(1) per call). Returns whether
    /// a sweep ran.
    pub fn sweep(&mut self, now: Instant) -> bool {
        if now.duration_since(self.last_sweep) < Duration::from_secs(10) {
            return false;
        }
        self.last_sweep = now;
        self.pending
            .retain(|_, p| now.duration_since(p.created) < VERIFICATION_TTL);
        true
    }

    /// Checks a code; a correct code consumes the verification and returns its phone.
    pub fn check(&mut self, id: &str, code: &str, now: Instant) -> VerifyOutcome {
        let Some(p) = self.pending.get_mut(id) else {
            return VerifyOutcome::Unknown;
        };
        if now.duration_since(p.created) >= VERIFICATION_TTL {
            self.pending.remove(id);
            return VerifyOutcome::Unknown;
        }
        if p.code != code {
            p.wrong_attempts += 1;
            if p.wrong_attempts >= MAX_ATTEMPTS {
                self.pending.remove(id);
            }
            return VerifyOutcome::WrongCode;
        }
        match self.pending.remove(id) {
            Some(p) => VerifyOutcome::Ok(p.phone),
            None => VerifyOutcome::Unknown,
        }
    }
}

/// A token bucket refilled at `rate` per second holding at most one second's worth.
pub(crate) struct TokenBucket {
    rate: Option<f64>,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: Option<f64>, now: Instant) -> TokenBucket {
        TokenBucket {
            rate,
            tokens: rate.unwrap_or(0.0),
            last: now,
        }
    }

    /// Takes one token if there is one (always succeeds without a rate).
    pub fn try_take(&mut self, now: Instant) -> bool {
        let Some(rate) = self.rate else {
            return true;
        };
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * rate;
        self.tokens = (self.tokens + refill).min(rate.max(1.0));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Server-side counters, served as `GET /v1/stats`.
#[derive(Default)]
pub(crate) struct Stats {
    pub sms_sent: AtomicU64,
    pub sms_delivered: AtomicU64,
    pub sms_rejected: AtomicU64,
    pub verifications_ok: AtomicU64,
    pub verifications_failed: AtomicU64,
    pub verifications_throttled: AtomicU64,
    pub injected_failures: AtomicU64,
    pub contacts_synced: AtomicU64,
    pub contacts_dropped: AtomicU64,
    /// Successful `POST /v1/login`s (returning users).
    pub logins: AtomicU64,
    pub sockets_opened: AtomicU64,
    pub online_sockets: AtomicU64,
    pub slow_consumers_closed: AtomicU64,
    /// Sockets dropped on purpose by the `drop_sockets` knob.
    pub sockets_dropped: AtomicU64,
    /// `send` frames accepted (acked).
    pub messages_relayed: AtomicU64,
    /// Message frames pushed into sockets' outgoing queues (one per recipient socket).
    pub messages_pushed: AtomicU64,
    /// Messages put into an offline queue.
    pub messages_queued: AtomicU64,
    /// Messages dropped from a full offline queue (the oldest goes).
    pub messages_dropped: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Shared {
    pub fn stats_json(&self) -> serde_json::Value {
        let s = &self.stats;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let pending = lock(&self.verifications).pending.len();
        serde_json::json!({
            "uptime_s": self.started.elapsed().as_secs_f64(),
            "registered_users": self.registered.load(Ordering::Acquire),
            "pending_verifications": pending,
            "sms": {
                "sent": get(&s.sms_sent),
                "delivered": get(&s.sms_delivered),
                "outstanding": self.sms.outstanding(),
                "rejected": get(&s.sms_rejected),
            },
            "verifications": {
                "ok": get(&s.verifications_ok),
                "failed": get(&s.verifications_failed),
                "throttled": get(&s.verifications_throttled),
            },
            "injected_failures": get(&s.injected_failures),
            "logins": get(&s.logins),
            "contacts": {
                "found": get(&s.contacts_synced),
                "dropped": get(&s.contacts_dropped),
            },
            "sockets": {
                "online": get(&s.online_sockets),
                "opened": get(&s.sockets_opened),
                "slow_consumers_closed": get(&s.slow_consumers_closed),
                "dropped": get(&s.sockets_dropped),
            },
            "messages": {
                "relayed": get(&s.messages_relayed),
                "pushed": get(&s.messages_pushed),
                "queued_offline": get(&s.messages_queued),
                "dropped_offline": get(&s.messages_dropped),
                "waiting_offline": self.hub.offline_len(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones() {
        assert!(valid_phone("+155500"));
        assert!(valid_phone("+123456789012345"));
        assert!(!valid_phone("+12345"));
        assert!(!valid_phone("+1234567890123456"));
        assert!(!valid_phone("15550000001"));
        assert!(!valid_phone("+1555000000a"));
        assert!(!valid_phone("+"));
    }

    #[test]
    fn bucket_allows_its_rate_per_second() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Some(10.0), t0);
        assert_eq!((0..20).filter(|_| b.try_take(t0)).count(), 10);
        assert!(b.try_take(t0 + Duration::from_millis(100)));
        assert!(!b.try_take(t0 + Duration::from_millis(100)));
        let mut free = TokenBucket::new(None, t0);
        assert!((0..1000).all(|_| free.try_take(t0)));
    }

    #[test]
    fn verification_is_single_use_and_limits_wrong_codes() {
        let now = Instant::now();
        let mut v = Verifications {
            pending: HashMap::new(),
            last_sweep: now,
        };
        let add = |v: &mut Verifications| {
            v.pending.insert(
                "v".into(),
                Pending {
                    phone: "+1555000".into(),
                    code: "123456".into(),
                    created: now,
                    wrong_attempts: 0,
                },
            );
        };
        add(&mut v);
        assert!(matches!(v.check("v", "123456", now), VerifyOutcome::Ok(p) if p == "+1555000"));
        assert!(matches!(
            v.check("v", "123456", now),
            VerifyOutcome::Unknown
        ));
        add(&mut v);
        for _ in 0..MAX_ATTEMPTS {
            assert!(matches!(
                v.check("v", "000000", now),
                VerifyOutcome::WrongCode
            ));
        }
        assert!(matches!(
            v.check("v", "123456", now),
            VerifyOutcome::Unknown
        ));
        add(&mut v);
        let late = now + VERIFICATION_TTL;
        assert!(matches!(
            v.check("v", "123456", late),
            VerifyOutcome::Unknown
        ));
    }
}
