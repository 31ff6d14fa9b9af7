//! Who is in the swarm: registered users (for contact discovery) and online users (to message).
//! Shared by all workers. Locks are taken per user event (signup, going online or offline, picking
//! contacts), never per message or per sample; message accounting uses atomics on the recipient.
//!
//! Memory stays flat however long the run: the directory of registered users is a uniform random
//! sample of at most [`DIRECTORY_SIZE`] of them (reservoir sampling), which is all contact
//! discovery needs (any registered phone is as good as another), and a user's message accounting
//! is folded into the registry's [`Ledger`] when the last reference to it goes — when nobody can
//! send to it or receive for it any more, so its counts are final.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use rand::RngExt;

use crate::compiled::flow::template::Value;
use crate::metrics::Undelivered;

/// A simulated user as the rest of the swarm sees it.
#[derive(Debug)]
pub struct Member {
    pub index: u64,
    /// The cohort this user belongs to (its index in the scenario's cohorts).
    pub cohort: usize,
    /// What the user published for others (`phone`, `user_id`, …), fixed once published.
    pub vars: Vec<(String, Value)>,
    /// Position in the online list while online (usize::MAX when offline).
    slot: AtomicUsize,
    /// Messages sent to this user that it should receive (sent and not refused by the target).
    pub expected: AtomicU64,
    /// Distinct messages this user received (after their deadline too).
    pub received: AtomicU64,
    /// Of `expected` and `received`: the messages whose delivery deadline falls after the run's
    /// end (still pending if undelivered). Zero without a `[run] delivery_deadline`.
    pub expected_unexpired: AtomicU64,
    pub received_unexpired: AtomicU64,
    /// True while the user is offline after leaving before the end of the run (its undelivered
    /// messages are pending, held by the target, rather than lost); cleared when it comes back.
    pub left: AtomicBool,
    /// Where its accounting goes when it is dropped (set when it is published).
    ledger: OnceLock<Arc<Ledger>>,
}

/// Message accounting of the users no longer referenced anywhere.
#[derive(Debug, Default)]
struct Ledger {
    lost: AtomicU64,
    pending: AtomicU64,
    /// Users published, and of them those folded in here: the rest are still alive.
    published: AtomicU64,
    folded: AtomicU64,
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(ledger) = self.ledger.get() {
            let d = self.undelivered();
            ledger.lost.fetch_add(d.lost, Ordering::Relaxed);
            ledger.pending.fetch_add(d.pending, Ordering::Relaxed);
            ledger.folded.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Member {
    pub fn new(index: u64, cohort: usize, vars: Vec<(String, Value)>) -> Self {
        Member {
            index,
            cohort,
            vars,
            slot: AtomicUsize::new(usize::MAX),
            expected: AtomicU64::new(0),
            received: AtomicU64::new(0),
            expected_unexpired: AtomicU64::new(0),
            received_unexpired: AtomicU64::new(0),
            left: AtomicBool::new(false),
            ledger: OnceLock::new(),
        }
    }

    /// What this user should have received and did not: pending when it left (the target
    /// holds it) or its deadline had not passed by the end, lost otherwise.
    fn undelivered(&self) -> Undelivered {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let missing = load(&self.expected).saturating_sub(load(&self.received));
        let unexpired = load(&self.expected_unexpired)
            .saturating_sub(load(&self.received_unexpired))
            .min(missing);
        if self.left.load(Ordering::Relaxed) {
            Undelivered {
                lost: 0,
                pending: missing,
            }
        } else {
            Undelivered {
                lost: missing - unexpired,
                pending: unexpired,
            }
        }
    }

    pub fn var(&self, name: &str) -> Option<&Value> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// A published variable as text (empty when not published).
    pub fn text(&self, name: &str) -> String {
        self.var(name).map(Value::to_text).unwrap_or_default()
    }

    pub fn is_online(&self) -> bool {
        self.slot.load(Ordering::Relaxed) != usize::MAX
    }
}

/// Registered users the directory keeps for contact discovery: ~1.2 MiB of members at most,
/// full after 3.4 minutes at 20 signups/s.
pub const DIRECTORY_SIZE: usize = 4_096;

#[derive(Debug, Default)]
pub struct Registry {
    directory: Mutex<Directory>,
    online: Mutex<Vec<Arc<Member>>>,
    ledger: Arc<Ledger>,
    /// The message ids users numbered so far: what a delivered id may name.
    pub issued: Issued,
}

/// The message ids inrush's users numbered so far, as two bounds: every sender is below
/// `senders`, every sequence number below `sequences`. A delivered id outside them names a
/// user that never numbered a message, or a number no user reached: not one of inrush's.
/// Raised as a user numbers a message, before it goes out (so its delivery never precedes its
/// bound); written only when a bound rises (a user's first message, the chattiest user's next
/// one), read on every message.
#[derive(Debug, Default)]
pub struct Issued {
    senders: AtomicU64,
    sequences: AtomicU64,
}

impl Issued {
    /// User `sender` numbered message `seq`.
    pub fn numbered(&self, sender: u64, seq: u32) {
        let raise = |bound: &AtomicU64, past: u64| {
            if bound.load(Ordering::Relaxed) < past {
                bound.fetch_max(past, Ordering::Relaxed);
            }
        };
        raise(&self.senders, sender.saturating_add(1));
        raise(&self.sequences, u64::from(seq) + 1);
    }

    /// Why message `seq` of `sender` cannot be one a user numbered, if it cannot.
    pub fn never(&self, sender: u64, seq: u32) -> Option<&'static str> {
        if sender >= self.senders.load(Ordering::Relaxed) {
            Some("no user of the run by that index sent a message")
        } else if u64::from(seq) >= self.sequences.load(Ordering::Relaxed) {
            Some("no user of the run sent that many messages")
        } else {
            None
        }
    }
}

/// A uniform random sample of every user published so far (Vitter's algorithm R).
#[derive(Debug, Default)]
struct Directory {
    members: Vec<Arc<Member>>,
    seen: u64,
    /// xorshift state for the replacement draws (their order across workers is a race anyway).
    draw: u64,
}

impl Directory {
    fn insert(&mut self, member: Arc<Member>, capacity: usize) {
        self.seen += 1;
        if self.members.len() < capacity {
            self.members.push(member);
            return;
        }
        self.draw = self.draw.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.draw;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        let j = (z ^ (z >> 31)) % self.seen;
        if let Some(slot) = self.members.get_mut(j as usize) {
            *slot = member;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking user task cannot leave these lists half-updated (pushes and swaps only), so a
    // poisoned lock still holds consistent data.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    pub fn publish(&self, member: Arc<Member>) {
        self.publish_into(member, DIRECTORY_SIZE);
    }

    fn publish_into(&self, member: Arc<Member>, capacity: usize) {
        if member.ledger.set(self.ledger.clone()).is_ok() {
            self.ledger.published.fetch_add(1, Ordering::Relaxed);
        }
        lock(&self.directory).insert(member, capacity);
    }

    pub fn go_online(&self, member: &Arc<Member>) {
        // Back online (a returning user): what the target held for it is delivered now, so its
        // undelivered messages are no longer pending; if it leaves again they are once more.
        member.left.store(false, Ordering::Relaxed);
        let mut online = lock(&self.online);
        // Online once, however many ways (a socket and a polling loop).
        if member.is_online() {
            return;
        }
        member.slot.store(online.len(), Ordering::Relaxed);
        online.push(member.clone());
    }

    pub fn go_offline(&self, member: &Arc<Member>) {
        let mut online = lock(&self.online);
        let slot = member.slot.swap(usize::MAX, Ordering::Relaxed);
        if slot < online.len() && Arc::ptr_eq(&online[slot], member) {
            online.swap_remove(slot);
            if let Some(moved) = online.get(slot) {
                moved.slot.store(slot, Ordering::Relaxed);
            }
        }
    }

    /// Up to `n` distinct registered users other than `except`, chosen at random.
    pub fn sample_registered<R: rand::Rng>(
        &self,
        rng: &mut R,
        n: usize,
        except: u64,
    ) -> Vec<Arc<Member>> {
        sample(&lock(&self.directory).members, rng, n, except)
    }

    /// Up to `n` distinct online users of one cohort other than `except`: random draws first,
    /// then (for a cohort that is a small part of the swarm) a scan from a random place.
    pub fn sample_online_in<R: rand::Rng>(
        &self,
        rng: &mut R,
        n: usize,
        except: u64,
        cohort: usize,
    ) -> Vec<Arc<Member>> {
        let online = lock(&self.online);
        let mut out: Vec<Arc<Member>> = Vec::with_capacity(n);
        if online.is_empty() || n == 0 {
            return out;
        }
        let fits = |m: &Arc<Member>, out: &[Arc<Member>]| {
            m.cohort == cohort && m.index != except && !out.iter().any(|o| o.index == m.index)
        };
        for _ in 0..n * 8 {
            if out.len() == n {
                return out;
            }
            let m = &online[rng.random_range(0..online.len())];
            if fits(m, &out) {
                out.push(m.clone());
            }
        }
        let start = rng.random_range(0..online.len());
        for i in 0..online.len() {
            if out.len() == n {
                break;
            }
            let m = &online[(start + i) % online.len()];
            if fits(m, &out) {
                out.push(m.clone());
            }
        }
        out
    }

    /// Up to `n` distinct online users other than `except`, chosen at random.
    pub fn sample_online<R: rand::Rng>(
        &self,
        rng: &mut R,
        n: usize,
        except: u64,
    ) -> Vec<Arc<Member>> {
        sample(&lock(&self.online), rng, n, except)
    }

    /// Compares what each user should have received with what it received: final message
    /// accounting across the swarm. Undelivered messages are pending when their recipient left
    /// (the target holds them) or their deadline had not passed by the end, lost otherwise.
    ///
    /// Call it once the users are done: the users dropped are in the ledger, the ones still
    /// referenced are counted from the directory and the online list. A user referenced only
    /// elsewhere (a running task) would be missed, which is what the debug assertion guards.
    pub fn delivery(&self) -> Undelivered {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut d = Undelivered {
            lost: load(&self.ledger.lost),
            pending: load(&self.ledger.pending),
        };
        let directory = lock(&self.directory);
        let online = lock(&self.online);
        let mut live: Vec<&Arc<Member>> = directory.members.iter().chain(online.iter()).collect();
        live.sort_by_key(|m| Arc::as_ptr(m));
        live.dedup_by(|a, b| Arc::ptr_eq(a, b));
        for m in &live {
            let u = m.undelivered();
            d.lost += u.lost;
            d.pending += u.pending;
        }
        debug_assert_eq!(
            load(&self.ledger.published),
            load(&self.ledger.folded) + live.len() as u64,
            "every published user is either folded into the ledger or still listed"
        );
        d
    }
}

fn sample<R: rand::Rng>(
    pool: &[Arc<Member>],
    rng: &mut R,
    n: usize,
    except: u64,
) -> Vec<Arc<Member>> {
    let mut out: Vec<Arc<Member>> = Vec::with_capacity(n);
    if pool.is_empty() || n == 0 {
        return out;
    }
    // Draw with a bounded number of attempts: cheap for small n against a large pool, and still
    // terminates when the pool is smaller than n.
    for _ in 0..n * 4 {
        if out.len() == n {
            break;
        }
        let m = &pool[rng.random_range(0..pool.len())];
        if m.index != except && !out.iter().any(|o| o.index == m.index) {
            out.push(m.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn member(i: u64) -> Arc<Member> {
        Arc::new(Member::new(
            i,
            (i % 2) as usize,
            vec![
                ("phone".into(), Value::Str(format!("+1{i}"))),
                ("user_id".into(), Value::Str(format!("u{i}"))),
            ],
        ))
    }

    #[test]
    fn only_ids_users_numbered_are_issued() {
        let issued = Issued::default();
        assert!(issued.never(0, 0).is_some(), "nothing numbered yet");
        issued.numbered(4, 2);
        issued.numbered(1, 0);
        assert_eq!(issued.never(4, 2), None);
        assert_eq!(issued.never(0, 1), None, "within both bounds");
        assert!(issued
            .never(5, 0)
            .expect("past the senders")
            .contains("index"));
        assert!(issued.never(999_999, 0).is_some());
        assert!(issued
            .never(3, 3)
            .expect("past the numbers")
            .contains("many"));
        issued.numbered(u64::MAX, u32::MAX);
        assert_eq!(issued.never(u64::MAX - 1, u32::MAX), None);
    }

    #[test]
    fn online_list_tracks_joins_and_leaves() {
        let r = Registry::default();
        let ms: Vec<_> = (0..5).map(member).collect();
        for m in &ms {
            r.publish(m.clone());
            r.go_online(m);
        }
        r.go_offline(&ms[1]);
        r.go_offline(&ms[1]);
        r.go_offline(&ms[4]);
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let mut seen: Vec<u64> = r
            .sample_online(&mut rng, 10, 0)
            .iter()
            .map(|m| m.index)
            .collect();
        seen.sort();
        assert_eq!(seen, vec![2, 3]);
        assert!(!ms[1].is_online() && ms[2].is_online());
        // Online now: 0, 2, 3 — cohort 0 holds the even ones.
        let mut evens: Vec<u64> = r
            .sample_online_in(&mut rng, 10, 99, 0)
            .iter()
            .map(|m| m.index)
            .collect();
        evens.sort();
        assert_eq!(evens, vec![0, 2]);
        let odd: Vec<u64> = r
            .sample_online_in(&mut rng, 10, 3, 1)
            .iter()
            .map(|m| m.index)
            .collect();
        assert!(odd.is_empty(), "3 is excluded and 1 is offline");
    }

    #[test]
    fn the_directory_is_a_bounded_uniform_sample_of_everyone_published() {
        let r = Registry::default();
        for i in 0..10_000 {
            r.publish_into(member(i), 200);
        }
        let d = lock(&r.directory);
        assert_eq!(d.members.len(), 200);
        assert_eq!(d.seen, 10_000);
        // Uniform over 0..10 000: mean 5 000, standard deviation of a 200-mean 2 887/√200 = 204;
        // the latest users are not favoured (the mean of the last 200 would be 9 900).
        let mean = d.members.iter().map(|m| m.index as f64).sum::<f64>() / 200.0;
        assert!((mean - 5_000.0).abs() < 4.0 * 204.0, "mean index {mean}");
        let early = d.members.iter().filter(|m| m.index < 5_000).count();
        assert!(
            (60..=140).contains(&early),
            "{early} of 200 from the first half"
        );
    }

    #[test]
    fn a_user_dropped_from_every_list_keeps_its_accounting() {
        let r = Registry::default();
        // A directory of one: the second user replaces the first or is not kept.
        let (a, b) = (member(1), member(2));
        a.expected.store(5, Ordering::Relaxed);
        a.received.store(2, Ordering::Relaxed);
        b.expected.store(4, Ordering::Relaxed);
        b.left.store(true, Ordering::Relaxed);
        r.publish_into(a, 1);
        r.publish_into(b, 1);
        assert_eq!(lock(&r.directory).members.len(), 1);
        assert_eq!(
            r.delivery(),
            Undelivered {
                lost: 3,
                pending: 4
            }
        );
        assert_eq!(r.ledger.folded.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn undelivered_messages_are_lost_or_pending_by_presence() {
        let r = Registry::default();
        let (a, b) = (member(1), member(2));
        r.publish(a.clone());
        r.publish(b.clone());
        a.expected.store(5, Ordering::Relaxed);
        a.received.store(3, Ordering::Relaxed);
        b.expected.store(4, Ordering::Relaxed);
        b.left.store(true, Ordering::Relaxed);
        assert_eq!(
            r.delivery(),
            Undelivered {
                lost: 2,
                pending: 4
            }
        );
        // b comes back: the target hands over the 4 it held, and nothing is pending any more.
        r.go_online(&b);
        assert!(!b.left.load(Ordering::Relaxed));
        b.received.store(4, Ordering::Relaxed);
        assert_eq!(
            r.delivery(),
            Undelivered {
                lost: 2,
                pending: 0
            }
        );
        // A message accepted while b is online and never received is lost, not pending.
        b.expected.store(5, Ordering::Relaxed);
        assert_eq!(r.delivery().lost, 3);
        // b leaves again with one undelivered: pending once more.
        r.go_offline(&b);
        b.left.store(true, Ordering::Relaxed);
        assert_eq!(
            r.delivery(),
            Undelivered {
                lost: 2,
                pending: 1
            }
        );
    }

    #[test]
    fn undelivered_messages_still_in_time_are_pending_and_going_online_twice_is_once() {
        let r = Registry::default();
        let a = member(1);
        r.publish(a.clone());
        r.go_online(&a);
        r.go_online(&a);
        r.go_offline(&a);
        assert!(!a.is_online(), "one go_offline undoes both");
        // 6 expected, 4 of them with a deadline after the run's end; 3 received, 1 of those.
        a.expected.store(6, Ordering::Relaxed);
        a.expected_unexpired.store(4, Ordering::Relaxed);
        a.received.store(3, Ordering::Relaxed);
        a.received_unexpired.store(1, Ordering::Relaxed);
        assert_eq!(
            r.delivery(),
            Undelivered {
                lost: 0,
                pending: 3
            }
        );
        // Two of the old ones never came instead: they are lost, the unexpired still pending.
        a.received_unexpired.store(3, Ordering::Relaxed);
        assert_eq!(
            r.delivery(),
            Undelivered {
                lost: 2,
                pending: 1
            }
        );
    }
}
