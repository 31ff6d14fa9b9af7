//! Regions: a share of the users behind an added network delay. A run against the built-in
//! messenger on 127.0.0.1 shows the delay in what those users measured, and only there.

mod common;

use std::path::Path;

use common::{on_schedule, run_quiet, Scenario, Scratch};
use inrush::report::summary::Verdict;
use inrush::swarm::identity::Identities;

/// 40 users/s for 3 s, evenly spaced: exactly 120 users, half of them 40 ms away (no jitter).
fn two_regions() -> String {
    Scenario::new("regions", 404)
        .timeout("5s")
        .drain("1500ms")
        .with(
            r#"
[load]
arrivals = "uniform"
phases = [ { name = "only", duration = "3s", rate = 40 } ]
[user]
contacts_known = 3
contacts_unknown = 1
messages = 3
think = { constant = "100ms" }
stay_online = { constant = "60s" }
[[regions]]
name = "far"
share = 0.5
latency = "40ms"
jitter = "0ms"
[[regions]]
name = "near"
share = 0.5
[thresholds]
"far:register.p50" = ">= 160ms"
"near:register.p50" = ">= 160ms"
"#,
        )
        .to_string()
}

/// The added one-way delay of the far region, in ms.
const D: f64 = 40.0;

#[test]
fn region_delay_shows_in_what_its_users_measure() {
    // Every one of the 120 users counts: again when the machine held the generator back.
    let (outcome, scratch) = on_schedule(|| {
        let scratch = Scratch::new();
        let file = scratch.scenario("regions", two_regions());
        (run_quiet(file, scratch.out("run"), None), scratch)
    });
    let out = scratch.out("run");
    let s = &outcome.summary;
    assert_eq!(s.arrivals.started, 120);
    let far = &s.regions["far"];
    let near = &s.regions["near"];
    assert_eq!((far.share, far.latency_ms, far.jitter_ms), (0.5, D, 0.0));
    assert_eq!((near.latency_ms, near.jitter_ms), (0.0, 0.0));

    // Users split by share: the same seeded draw the run used, and within binomial bounds
    // (n = 120, p = 0.5: sd 5.5, so 5 sd is ±27).
    let ids = Identities::new(404, "+1555");
    let plan = inrush::compiled::compile(Path::new("t.toml"), &two_regions(), None).expect("valid");
    let far_users = (0..120)
        .filter(|i| plan.regions.pick(ids.region_draw(*i)) == Some(0))
        .count() as u64;
    assert_eq!(far.users, far_users);
    assert_eq!(far.users + near.users, 120);
    assert!((33..=87).contains(&far.users), "{}", far.users);
    assert_eq!(
        far.arrivals.planned + near.arrivals.planned,
        s.arrivals.planned
    );

    // Every metric is broken down, and the parts add up to the whole.
    for (name, m) in &s.metrics {
        assert_eq!(
            far.metrics[name].count + near.metrics[name].count,
            m.count,
            "{name}"
        );
    }
    let p50 = |m: &inrush::report::summary::MetricSummary| m.latency_ms.expect("samples").p50;
    let min = |m: &inrush::report::summary::MetricSummary| m.latency_ms.expect("samples").min;

    // The first HTTP step on a new connection: a round trip to connect (2 D), the request out
    // (D) and the response back (D) — at least 4 D for every far user.
    assert!(
        min(&far.metrics["register"]) >= 4.0 * D,
        "{:?}",
        far.metrics["register"]
    );
    assert!(p50(&far.metrics["register"]) >= 4.0 * D);
    // Near users pay none of it: their p50 stays below even one far delay.
    assert!(
        p50(&near.metrics["register"]) < D,
        "{:?}",
        near.metrics["register"]
    );
    // A request on the kept-alive connection pays one way out and one back.
    assert!(min(&far.metrics["verify"]) >= 2.0 * D);
    // The socket: a round trip, then the upgrade out and back.
    assert!(min(&far.metrics["ws_connect"]) >= 4.0 * D);
    // A message out and its ack back; a message to a far recipient arrives one delay late.
    assert!(min(&far.metrics["message_ack"]) >= 2.0 * D);
    assert!(min(&near.metrics["message_ack"]) < D);
    let far_delivery = far
        .messages
        .delivery_latency_ms
        .expect("far users received messages");
    assert!(far_delivery.min >= D, "{far_delivery:?}");
    assert_eq!(
        far.messages.delivered + near.messages.delivered,
        s.messages.delivered
    );
    assert_eq!(s.messages.lost, Some(0));

    // Region-scoped thresholds see the region's own values.
    let t: Vec<_> = s
        .thresholds
        .iter()
        .map(|t| (t.passed, t.observed))
        .collect();
    assert_eq!(t[0], (true, Some(p50(&far.metrics["register"]))));
    assert_eq!(t[1], (false, Some(p50(&near.metrics["register"]))));
    assert_eq!(s.verdict, Verdict::Failed);

    // Every report shows the breakdown.
    let read = |f: &str| std::fs::read_to_string(out.join(f)).expect(f);
    let html = read("index.html");
    assert!(html.contains(r#"data-region="far""#) && html.contains(r#"data-region="near""#));
    assert!(html.contains("Latency distribution by region"));
    assert!(
        read("summary.md").contains("| by region (p50 / p99 ms) | far (50% +40ms) | near (50%) |")
    );
    let table = inrush::report::terminal::render(s);
    assert!(
        table.contains("by region") && table.contains("register p50 / p99 ms"),
        "{table}"
    );
    let json: serde_json::Value = serde_json::from_str(&read("summary.json")).expect("json");
    assert_eq!(json["regions"]["far"]["latency_ms"], 40.0);
    assert!(json["regions"]["far"]["metrics"]["register"]["latency_ms"]["p50"].is_number());

    // `inrush report` recovers the regions from the hlog: every artifact byte-identical.
    let before: Vec<(String, Vec<u8>)> = artifacts(&out);
    let rebuilt = inrush::report(&out, &[], false).expect("rebuild");
    assert_eq!(rebuilt.regions, s.regions);
    assert_eq!(artifacts(&out), before);
    for f in ["regions.png", "regions.svg"] {
        assert!(out.join(f).is_file(), "{f}");
    }
}

fn artifacts(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("run dir")
        .filter_map(Result::ok)
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).expect("read"))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn same_seed_same_regions() {
    let a = Identities::new(9, "+1");
    let plan = inrush::compiled::compile(Path::new("t.toml"), &two_regions(), None).expect("valid");
    let regions = |ids: &Identities| -> Vec<Option<usize>> {
        (0..500)
            .map(|i| plan.regions.pick(ids.region_draw(i)))
            .collect()
    };
    assert_eq!(regions(&a), regions(&Identities::new(9, "+1")));
    assert_ne!(regions(&a), regions(&Identities::new(10, "+1")));
}

#[test]
fn region_mistakes_are_reported_with_their_positions() {
    let bad = r#"name = "bad"
[target]
url = "http://127.0.0.1:1"
[load]
phases = [ { name = "surge", duration = "1s", rate = 1 } ]
[[regions]]
name = "americas"
share = 0.3
latency = "90 parsecs"
[[regions]]
name = "americas"
share = 0.3
[[regions]]
name = "surge"
share = 0
[thresholds]
"europe:verify.p99" = "< 1s"
"#;
    let Err(err) = inrush::compiled::compile(Path::new("bad.toml"), bad, None) else {
        panic!("the scenario is invalid");
    };
    let err = err.to_string();
    for want in [
        "bad.toml:9:11:",
        "bad.toml:11:8: region `americas` is defined twice",
        "bad.toml:14:8: region `surge` has the name of a phase",
        "bad.toml:15:9: share must be",
        "bad.toml:15:9: region shares add up to 0.6",
        "bad.toml:17:",
        "unknown phase or region `europe`",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}
