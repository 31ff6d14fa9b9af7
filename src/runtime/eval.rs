//! Expression evaluation for one user: its variables, loop counters, message ids, random draws
//! and peers picked from the swarm (rendering templates with it is `render.rs`).
//!
//! Everything here is a function of a [`Scope`] (what the user holds) and a [`World`] (what
//! the run shares, read-only), so it runs without a worker or a network.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rand::rngs::SmallRng;
use rand::RngExt;

use crate::compiled::flow::feeder::Feeder;
use crate::compiled::flow::template::Value;
use crate::compiled::flow::{Expr, Until, Want};
use crate::runtime::message_id::message_id;
use crate::swarm::identity::Identities;
use crate::swarm::registry::{Member, Registry};

/// How many online users a user keeps as chat contacts for `swarm.online`.
pub(super) const CHAT_CONTACTS: usize = 5;

/// What the run shares that expressions read: identities, the swarm, feeders, the seed; and
/// the intended start of the operation being evaluated (a message id made now carries it).
#[derive(Clone, Copy)]
pub(super) struct World<'w> {
    pub identities: &'w Identities,
    pub registry: &'w Registry,
    pub feeders: &'w [Feeder],
    pub seed: u64,
    pub intended: Duration,
    /// The worker's buffers (rendering a frame).
    pub scratch: &'w crate::swarm::Scratch,
}

/// What one step picked, so that two uses within the step agree.
#[derive(Debug, Default)]
pub(super) struct StepPicks {
    /// The step's message: its number and intended send time.
    pub msg: Option<(u32, Duration)>,
    /// The online peer the step talks to.
    pub peer: Option<Arc<Member>>,
    /// The step asked for an online peer and there was none.
    pub no_peer: bool,
}

/// What a user's expressions read and change.
pub(super) struct Scope {
    pub index: u64,
    /// The user's random stream: every draw (think times, backoffs, expressions) comes from it,
    /// in flow order, so the same seed gives the same values.
    pub rng: SmallRng,
    /// Captured variables, by slot.
    pub vars: Vec<Option<Value>>,
    /// Iteration numbers of the enclosing loops and repeats, innermost last.
    pub seq: Vec<u64>,
    pub step: StepPicks,
    /// The peers picked from the swarm, once the user picks one.
    pub contacts: Option<Box<Contacts>>,
    /// The number of this user's next message (kept across visits).
    pub next_msg: u32,
    /// For a traced user only (boxed: few are): the latest base64 outputs made from an `env.*`
    /// secret (with the secret's name), which a trace masks as it masks the secret itself.
    pub derived_secrets: Option<Box<DerivedSecrets>>,
    /// The frame an `on_frame` rule answers, while its reply renders (`frame.*`).
    /// Boxed: it is there only while a reply renders, and every user would carry its room.
    pub frame: Option<Box<Answered>>,
}

/// A traced user's secret-derived values (`Scope::derived_secrets`).
#[derive(Default)]
pub(super) struct DerivedSecrets(pub Vec<(String, String)>);

/// The peers a user picked from the swarm. Boxed in the scope on first use: many users never
/// pick one, and each would carry the room of three collections for its whole life.
#[derive(Default)]
pub(super) struct Contacts {
    /// The users of the last `swarm.sample`.
    pub sampled: Vec<Arc<Member>>,
    /// Chat contacts for `swarm.online`, and per cohort for `swarm.cohort(...).online`.
    pub chat: Vec<Arc<Member>>,
    pub cohorts: HashMap<usize, Vec<Arc<Member>>>,
}

/// The frame a rule's reply answers: its JSON (when the reply reads a path of it) and the named
/// groups of the rule's match regex.
#[derive(Debug, Default)]
pub(super) struct Answered {
    pub json: Option<serde_json::Value>,
    pub groups: Vec<(String, String)>,
}

/// How many secret-derived values a traced user remembers (the latest).
const DERIVED_SECRETS: usize = 32;

impl Scope {
    pub fn new(index: u64, rng: SmallRng, vars: Vec<Option<Value>>, next_msg: u32) -> Scope {
        Scope {
            index,
            rng,
            vars,
            seq: Vec::new(),
            step: StepPicks::default(),
            contacts: None,
            next_msg,
            derived_secrets: None,
            frame: None,
        }
    }

    /// Whether a `when` / `until` condition holds: values compare as text.
    pub fn holds(&mut self, cond: &Until, w: &World<'_>) -> bool {
        let (slot, want, equal) = match cond {
            Until::Exists(slot, e) => return self.var(*slot).is_some() == *e,
            Until::Equals(slot, want) => (slot, want, true),
            Until::NotEquals(slot, want) => (slot, want, false),
        };
        let want = self.want_text(want, w);
        self.var(*slot)
            .is_some_and(|x| (x.to_text() == want) == equal)
    }

    fn var(&self, slot: usize) -> Option<&Value> {
        self.vars.get(slot).and_then(Option::as_ref)
    }

    /// What an expectation's value is now, as text: a constant's, or its template rendered.
    pub fn want_text(&mut self, want: &Want, w: &World<'_>) -> String {
        match want {
            Want::Const(c) => Value::from_json(c).to_text(),
            Want::Text(t) => t.render_with(|e| self.eval(e, w)),
        }
    }

    /// The step's tracked message (its number and intended send time): numbered on first use,
    /// so every `msg.id` of one step is the same message.
    pub fn msg(&mut self, w: &World<'_>) -> (u32, Duration) {
        *self.step.msg.get_or_insert_with(|| {
            let m = (self.next_msg, w.intended);
            // Issued before it can go out: its delivery is checked against what was issued.
            w.registry.issued.numbered(self.index, m.0);
            self.next_msg += 1;
            m
        })
    }

    /// Evaluates an expression for this user. (A little over 80 lines: one short arm per
    /// expression kind, which reads better as one match than spread over helpers.)
    pub fn eval(&mut self, e: &Expr, w: &World<'_>) -> Value {
        match e {
            Expr::Lit(v) => v.clone(),
            Expr::Var(slot) => self
                .vars
                .get(*slot)
                .cloned()
                .flatten()
                .unwrap_or(Value::Null),
            Expr::Seq => Value::Num(self.seq.last().copied().unwrap_or(0) as f64),
            Expr::UserIndex => Value::Num(self.index as f64),
            Expr::UserPhone => Value::Str(w.identities.phone(self.index)),
            Expr::MsgId => {
                let (seq, intended) = self.msg(w);
                Value::Str(message_id(self.index, seq, intended))
            }
            Expr::Uuid => Value::Str(self.uuid()),
            Expr::UserUuid => Value::Str(user_uuid(w.seed, self.index)),
            Expr::RandomInt(lo, hi) => {
                let lo = num(&self.eval(lo, w)) as i64;
                let hi = num(&self.eval(hi, w)) as i64;
                Value::Num(if hi > lo {
                    self.rng.random_range(lo..=hi)
                } else {
                    lo
                } as f64)
            }
            Expr::RandomString(n) => {
                let n = num(&self.eval(n, w)).clamp(0.0, 4096.0) as usize;
                const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
                Value::Str(
                    (0..n)
                        .map(|_| ALPHABET[self.rng.random_range(0..ALPHABET.len())] as char)
                        .collect(),
                )
            }
            Expr::TimestampMs => Value::Num(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_millis() as f64),
            ),
            Expr::Base64(x) => {
                let text = self.eval(x, w).to_text();
                let out = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
                if let Some(derived) = &mut self.derived_secrets {
                    remember_derived(&mut derived.0, x, &out);
                }
                Value::Str(out)
            }
            Expr::Secret { value, .. } => value.clone(),
            Expr::FrameGroup(name) => self
                .frame
                .as_ref()
                .and_then(|f| f.groups.iter().find(|(n, _)| n == name))
                .map_or(Value::Null, |(_, v)| Value::Str(v.clone())),
            Expr::FramePath(keys) => {
                let mut at = self.frame.as_ref().and_then(|f| f.json.as_ref());
                for key in keys {
                    at = at.and_then(|v| match v {
                        serde_json::Value::Array(items) => {
                            key.parse::<usize>().ok().and_then(|i| items.get(i))
                        }
                        other => other.get(key.as_str()),
                    });
                }
                at.map_or(Value::Null, Value::from_json)
            }
            Expr::SwarmOnline(var) => {
                let peer = match &self.step.peer {
                    Some(p) => Some(p.clone()),
                    None => self.pick_peer(w.registry),
                };
                self.peer_var(peer, var)
            }
            Expr::SwarmOnlineIn(cohort, var) => {
                let peer = match &self.step.peer {
                    Some(p) => Some(p.clone()),
                    None => self.pick_peer_in(w.registry, *cohort),
                };
                self.peer_var(peer, var)
            }
            Expr::SwarmSample(n, var) => {
                let n = num(&self.eval(n, w)).clamp(0.0, 10_000.0) as usize;
                let sampled = w.registry.sample_registered(&mut self.rng, n, self.index);
                self.contacts.get_or_insert_default().sampled = sampled;
                self.sampled_var(var)
            }
            Expr::SwarmSampled(var) => self.sampled_var(var),
            Expr::FakePhones(n) => {
                let n = num(&self.eval(n, w)).clamp(0.0, 10_000.0) as usize;
                Value::List(
                    (0..n)
                        .map(|_| Value::Str(w.identities.unknown_phone(&mut self.rng)))
                        .collect(),
                )
            }
            Expr::Feed { feeder, column } => w
                .feeders
                .get(*feeder)
                .and_then(|f| f.row(self.index, w.seed).get(*column))
                .map_or(Value::Null, |v| Value::Str(v.clone())),
            Expr::Concat(parts) => self.concat(parts, w),
        }
    }

    /// A version 4 UUID from two draws of the user's stream.
    fn uuid(&mut self) -> String {
        let a: u64 = self.rng.random();
        let b: u64 = self.rng.random();
        format_uuid(a, b)
    }
}

/// The user's own UUID (`user.uuid`): the same for a given seed and user index on every use,
/// every visit and every run, and drawn apart from the user's random stream (using it changes
/// no other value). Two rounds of SplitMix64 over the seed and the index.
fn user_uuid(seed: u64, index: u64) -> String {
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let a = mix(seed ^ mix(index.wrapping_add(0x9e37_79b9_7f4a_7c15)));
    let b = mix(a.wrapping_add(0x9e37_79b9_7f4a_7c15));
    format_uuid(a, b)
}

/// A version 4 UUID's text from 128 random bits.
fn format_uuid(a: u64, b: u64) -> String {
    let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    let a = (a & 0xffff_ffff_ffff_0fff) | 0x4000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

impl Scope {
    /// Lists concatenate into a list; anything else into text.
    fn concat(&mut self, parts: &[Expr], w: &World<'_>) -> Value {
        let values: Vec<Value> = parts.iter().map(|p| self.eval(p, w)).collect();
        if values.iter().all(|v| matches!(v, Value::List(_))) {
            Value::List(
                values
                    .into_iter()
                    .flat_map(|v| match v {
                        Value::List(items) => items,
                        other => vec![other],
                    })
                    .collect(),
            )
        } else {
            let mut s = String::new();
            for v in &values {
                v.write_to(&mut s);
            }
            Value::Str(s)
        }
    }

    /// Keeps `peer` as the step's peer and reads its variable.
    fn peer_var(&mut self, peer: Option<Arc<Member>>, var: &str) -> Value {
        self.step.peer = peer.clone();
        self.step.no_peer |= peer.is_none();
        peer.and_then(|p| p.var(var).cloned())
            .unwrap_or(Value::Null)
    }

    fn sampled_var(&self, var: &str) -> Value {
        let sampled = self.contacts.as_ref().map_or(&[][..], |c| &c.sampled[..]);
        Value::List(sampled.iter().filter_map(|m| m.var(var).cloned()).collect())
    }

    /// An online chat contact: kept while online, refreshed from the swarm when none is.
    fn pick_peer(&mut self, registry: &Registry) -> Option<Arc<Member>> {
        let chat = &mut self.contacts.get_or_insert_default().chat;
        chat.retain(|m| m.is_online());
        if chat.is_empty() {
            *chat = registry.sample_online(&mut self.rng, CHAT_CONTACTS, self.index);
        }
        if chat.is_empty() {
            return None;
        }
        let i = self.rng.random_range(0..chat.len());
        Some(chat[i].clone())
    }

    /// An online contact from one cohort, kept like `pick_peer`'s.
    fn pick_peer_in(&mut self, registry: &Registry, cohort: usize) -> Option<Arc<Member>> {
        let cohorts = &mut self.contacts.get_or_insert_default().cohorts;
        let mut contacts = cohorts.remove(&cohort).unwrap_or_default();
        contacts.retain(|m| m.is_online());
        if contacts.is_empty() {
            contacts = registry.sample_online_in(&mut self.rng, CHAT_CONTACTS, self.index, cohort);
        }
        let peer = (!contacts.is_empty())
            .then(|| contacts[self.rng.random_range(0..contacts.len())].clone());
        cohorts.insert(cohort, contacts);
        peer
    }
}

/// A value as a number (text is parsed; anything else is 0).
/// Keeps `out`, a base64 of `x`, among a traced user's secret-derived values when `x` reads a
/// secret: base64 of a secret mixed with other text (`nul + user.phone + nul + env.PASS`) hides
/// the secret from a substring search, so the whole output is masked instead.
fn remember_derived(derived: &mut Vec<(String, String)>, x: &Expr, out: &str) {
    // The base64 of a secret alone is among the run's masks already.
    let Some(name) =
        crate::compiled::flow::expr_secret(x).filter(|_| !matches!(x, Expr::Secret { .. }))
    else {
        return;
    };
    if out.is_empty() || derived.iter().any(|(_, v)| v == out) {
        return;
    }
    if derived.len() == DERIVED_SECRETS {
        derived.remove(0);
    }
    derived.push((format!("[masked base64(… env.{name} …)]"), out.to_string()));
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Num(n) => *n,
        Value::Str(s) => s.trim().parse().unwrap_or(0.0),
        Value::Bool(b) => f64::from(u8::from(*b)),
        _ => 0.0,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use rand::SeedableRng;

    /// A world with a fresh swarm and no feeders, for tests.
    pub(crate) struct TestWorld {
        pub identities: Identities,
        pub registry: Registry,
        pub feeders: Vec<Feeder>,
        pub scratch: crate::swarm::Scratch,
    }

    impl TestWorld {
        pub fn new() -> TestWorld {
            TestWorld {
                identities: Identities::new(7, "+1555"),
                registry: Registry::default(),
                feeders: Vec::new(),
                scratch: Default::default(),
            }
        }

        pub fn world(&self, intended: Duration) -> World<'_> {
            World {
                identities: &self.identities,
                registry: &self.registry,
                feeders: &self.feeders,
                seed: 7,
                intended,
                scratch: &self.scratch,
            }
        }
    }

    pub(crate) fn scope(seed: u64) -> Scope {
        Scope::new(3, SmallRng::seed_from_u64(seed), vec![None; 4], 0)
    }

    fn lit(v: Value) -> Box<Expr> {
        Box::new(Expr::Lit(v))
    }

    fn online(w: &TestWorld, index: u64, cohort: usize, name: &str) -> Arc<Member> {
        let m = Arc::new(Member::new(
            index,
            cohort,
            vec![("name".to_string(), Value::Str(name.to_string()))],
        ));
        w.registry.publish(m.clone());
        w.registry.go_online(&m);
        m
    }

    #[test]
    fn plain_expressions() {
        let tw = TestWorld::new();
        let w = tw.world(Duration::ZERO);
        let mut s = scope(1);
        assert_eq!(s.eval(&Expr::Var(0), &w), Value::Null, "an unset variable");
        s.vars[0] = Some(Value::Str("x".into()));
        assert_eq!(s.eval(&Expr::Var(0), &w), Value::Str("x".into()));
        assert_eq!(
            s.eval(&Expr::Var(99), &w),
            Value::Null,
            "a slot out of range"
        );
        assert_eq!(s.eval(&Expr::Seq, &w), Value::Num(0.0), "outside any loop");
        s.seq.extend([4, 9]);
        assert_eq!(
            s.eval(&Expr::Seq, &w),
            Value::Num(9.0),
            "the innermost loop"
        );
        assert_eq!(s.eval(&Expr::UserIndex, &w), Value::Num(3.0));
        assert_eq!(
            s.eval(&Expr::UserPhone, &w),
            Value::Str(tw.identities.phone(3))
        );
        let b64 = Expr::Base64(lit(Value::Str("hi".into())));
        assert_eq!(s.eval(&b64, &w), Value::Str("aGk=".into()));
        let text = Expr::Concat(vec![Expr::Lit(Value::Str("a".into())), Expr::UserIndex]);
        assert_eq!(s.eval(&text, &w), Value::Str("a3".into()));
        let lists = Expr::Concat(vec![
            Expr::Lit(Value::List(vec![Value::Num(1.0)])),
            Expr::Lit(Value::List(vec![Value::Num(2.0)])),
        ]);
        assert_eq!(
            s.eval(&lists, &w),
            Value::List(vec![Value::Num(1.0), Value::Num(2.0)])
        );
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_millis() as f64);
        let Value::Num(ts) = s.eval(&Expr::TimestampMs, &w) else {
            panic!("a timestamp is a number");
        };
        // The wall clock between two reads a few statements apart: well within a minute.
        assert!((ts - now_ms).abs() < 60_000.0, "{ts} vs {now_ms}");
    }

    #[test]
    fn random_values_stay_in_range_and_follow_the_seed() {
        let tw = TestWorld::new();
        let w = tw.world(Duration::ZERO);
        let int = Expr::RandomInt(lit(Value::Num(5.0)), lit(Value::Str(" 8 ".into())));
        let string = Expr::RandomString(lit(Value::Num(12.0)));
        let draw = |seed| {
            let mut s = scope(seed);
            let ints: Vec<Value> = (0..200).map(|_| s.eval(&int, &w)).collect();
            (ints, s.eval(&string, &w), s.eval(&Expr::Uuid, &w))
        };
        let (ints, text, uuid) = draw(11);
        // Every draw within [5, 8]; 200 draws of 4 values leave none out (miss chance 4·0.75^200).
        for want in 5..=8 {
            assert!(
                ints.contains(&Value::Num(want as f64)),
                "{want} never drawn"
            );
        }
        assert!(ints
            .iter()
            .all(|v| matches!(v, Value::Num(n) if (5.0..=8.0).contains(n))));
        let Value::Str(text) = text else {
            panic!("a random string is text")
        };
        assert_eq!(text.len(), 12);
        assert!(text
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        let Value::Str(uuid) = uuid else {
            panic!("a uuid is text")
        };
        let parts: Vec<&str> = uuid.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "version 4: {uuid}");
        assert!("89ab".contains(&parts[3][..1]), "RFC 4122 variant: {uuid}");
        // The same seed gives the same values; another seed other values.
        assert_eq!(draw(11), draw(11));
        assert_ne!(draw(11).2, draw(12).2);
        // An empty range gives its lower end without a draw.
        let mut s = scope(1);
        let empty = Expr::RandomInt(lit(Value::Num(9.0)), lit(Value::Num(2.0)));
        assert_eq!(s.eval(&empty, &w), Value::Num(9.0));
        let mut fresh = scope(1);
        assert_eq!(s.eval(&Expr::Uuid, &w), fresh.eval(&Expr::Uuid, &w));
        // Lengths are clamped: no negative, no more than 4096.
        let long = Expr::RandomString(lit(Value::Num(1e9)));
        assert!(matches!(s.eval(&long, &w), Value::Str(t) if t.len() == 4096));
        let negative = Expr::RandomString(lit(Value::Num(-3.0)));
        assert_eq!(s.eval(&negative, &w), Value::Str(String::new()));
    }

    #[test]
    fn a_message_id_is_made_once_per_step_and_numbers_go_up() {
        let tw = TestWorld::new();
        let mut s = scope(1);
        let at = Duration::from_millis(1500);
        let first = s.eval(&Expr::MsgId, &tw.world(at));
        // The same step: the same id, even with another intended time.
        assert_eq!(s.eval(&Expr::MsgId, &tw.world(Duration::ZERO)), first);
        assert_eq!(first, Value::Str("3-0-1500000".into()));
        assert_eq!(s.step.msg, Some((0, at)));
        s.step = StepPicks::default();
        assert_eq!(
            s.eval(&Expr::MsgId, &tw.world(at)),
            Value::Str("3-1-1500000".into())
        );
        assert_eq!(s.next_msg, 2);
    }

    #[test]
    fn a_step_talks_to_one_online_peer_or_notes_there_is_none() {
        let tw = TestWorld::new();
        let w = tw.world(Duration::ZERO);
        let mut s = scope(1);
        let expr = Expr::SwarmOnline("name".into());
        assert_eq!(s.eval(&expr, &w), Value::Null);
        assert!(s.step.no_peer, "nobody online");
        s.step = StepPicks::default();
        // The user itself is never its own peer.
        online(&tw, 3, 0, "me");
        assert_eq!(s.eval(&expr, &w), Value::Null);
        s.step = StepPicks::default();
        for i in 10..20 {
            online(&tw, i, (i % 2) as usize, &format!("u{i}"));
        }
        let first = s.eval(&expr, &w);
        assert!(matches!(&first, Value::Str(n) if n.starts_with('u')));
        assert!(!s.step.no_peer);
        for _ in 0..10 {
            assert_eq!(s.eval(&expr, &w), first, "one peer per step");
        }
        // Contacts are kept: never more than CHAT_CONTACTS, all online.
        let chat = s.contacts.as_ref().map_or(0, |c| c.chat.len());
        assert!(chat > 0 && chat <= CHAT_CONTACTS);
        // A cohort's peer belongs to that cohort.
        for _ in 0..20 {
            s.step = StepPicks::default();
            s.eval(&Expr::SwarmOnlineIn(1, "name".into()), &w);
            let peer = s.step.peer.as_ref().map(|p| p.cohort);
            assert_eq!(peer, Some(1));
        }
        s.step = StepPicks::default();
        assert_eq!(
            s.eval(&Expr::SwarmOnlineIn(5, "name".into()), &w),
            Value::Null
        );
        assert!(s.step.no_peer, "an empty cohort");
    }

    #[test]
    fn samples_and_fake_phones() {
        let tw = TestWorld::new();
        let w = tw.world(Duration::ZERO);
        for i in 0..10 {
            online(&tw, i, 0, &format!("u{i}"));
        }
        let mut s = scope(1);
        let sample = Expr::SwarmSample(lit(Value::Num(4.0)), "name".into());
        let Value::List(names) = s.eval(&sample, &w) else {
            panic!("a sample is a list")
        };
        assert_eq!(names.len(), 4);
        assert!(
            !names.contains(&Value::Str("u3".into())),
            "not the user itself"
        );
        assert_eq!(
            s.eval(&Expr::SwarmSampled("name".into()), &w),
            Value::List(names)
        );
        let Value::List(phones) = s.eval(&Expr::FakePhones(lit(Value::Num(50.0))), &w) else {
            panic!("fake phones are a list")
        };
        let known: Vec<Value> = (0..1000)
            .map(|i| Value::Str(tw.identities.phone(i)))
            .collect();
        assert_eq!(phones.len(), 50);
        assert!(phones.iter().all(|p| !known.contains(p)), "nobody's phone");
    }

    #[test]
    fn conditions_compare_variables_as_text() {
        let tw = TestWorld::new();
        let w = tw.world(Duration::ZERO);
        let mut s = scope(2);
        let one = || Want::Const(serde_json::json!(1));
        assert!(s.holds(&Until::Exists(0, false), &w));
        assert!(!s.holds(&Until::Equals(0, one()), &w));
        assert!(
            !s.holds(&Until::NotEquals(0, one()), &w),
            "unset is neither"
        );
        s.vars[0] = Some(Value::Str("1".into()));
        assert!(s.holds(&Until::Equals(0, one()), &w), "compared as text");
        assert!(s.holds(&Until::NotEquals(0, Want::Const(serde_json::json!(2))), &w));
        assert!(s.holds(&Until::Exists(0, true), &w));
        // A templated value is evaluated for the user when the condition is checked: here the
        // variable in slot 1, then a literal made by an expression.
        let awaited = || {
            Want::Text(crate::compiled::flow::template::Template {
                parts: vec![crate::compiled::flow::template::Part::Expr(Expr::Var(1))],
                escape: crate::compiled::flow::template::Escape::None,
            })
        };
        assert!(!s.holds(&Until::Equals(0, awaited()), &w), "slot 1 unset");
        s.vars[1] = Some(Value::Num(1.0));
        assert!(s.holds(&Until::Equals(0, awaited()), &w));
        s.vars[1] = Some(Value::Str("2".into()));
        assert!(s.holds(&Until::NotEquals(0, awaited()), &w));
    }

    #[test]
    fn user_uuid_is_fixed_per_user_and_draws_nothing() {
        let tw = TestWorld::new();
        let w = tw.world(Duration::ZERO);
        let (mut a, mut b) = (scope(1), scope(2));
        let first = a.eval(&Expr::UserUuid, &w);
        // The same user (index 3) on every use and whatever its random stream.
        assert_eq!(a.eval(&Expr::UserUuid, &w), first);
        assert_eq!(b.eval(&Expr::UserUuid, &w), first);
        // Its own stream is untouched: the next random UUID is the one a fresh scope draws.
        assert_eq!(a.eval(&Expr::Uuid, &w), scope(1).eval(&Expr::Uuid, &w));
        let Value::Str(text) = &first else {
            panic!("a string")
        };
        let groups: Vec<usize> = text.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&text[14..15], "4", "version 4");
        // Another user, or another seed, gets another one.
        let mut other = Scope::new(4, SmallRng::seed_from_u64(1), vec![None; 4], 0);
        assert_ne!(other.eval(&Expr::UserUuid, &w), first);
        assert_ne!(Value::Str(user_uuid(8, 3)), first);
        assert_eq!(
            Value::Str(user_uuid(7, 3)),
            first,
            "the test world's seed is 7"
        );
    }
}
