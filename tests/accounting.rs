//! The accounting identities on shipped scenarios, in short: every planned arrival started or
//! was dropped by reason; every started user completed, failed or was cut off by the run's end
//! (the cut-off ones by step); phases and intervals add up to the totals, frames per socket step
//! included (`common::assert_arrivals_accounted`, which every `run_quiet` applies). A shortened
//! run ends while many users are mid-flow, so the cut-off side is exercised, whatever the load
//! of the machine (the identities hold for a generator that falls behind too).

mod common;

use common::{run_quiet, shortened, Scratch};

#[test]
fn the_quickstart_in_short_accounts_for_every_arrival_user_and_frame() {
    let scratch = Scratch::new();
    // 30 s → 3 s: baseline 0.8 s at 10/s, the surge to 100/s, the plateau, the ebb; 1 s drain.
    let path = scratch.scenario("quickstart", shortened("quickstart", 0.1, "1s"));
    let s = run_quiet(path, scratch.out("run"), None).summary;
    let a = &s.arrivals;
    // The schedule's mass is 8 + 22 + 100 + 48 = 178 arrivals (Poisson: give or take ~4σ).
    assert!((120..=240).contains(&a.planned), "{a:?}");
    // A signup-and-chat flow lasts over 2 s (its 2–6 s stay online alone), more than the drain:
    // the users of the last two seconds are still mid-flow when the run ends.
    assert!(a.cut_off > 0, "{a:?}");
    assert!(
        a.cut_off_in.keys().all(|k| !k.contains('?')),
        "every cut-off user is placed in its flow: {a:?}"
    );
    let ws = &s.metrics["ws_connect"];
    let m = &s.messages;
    // Every chat message of the built-in flow is one frame out on the socket `ws_connect`
    // opened (its sends are unnamed); what comes in holds at least the acks and deliveries.
    assert_eq!(ws.frames_sent, m.sent, "{ws:?} {m:?}");
    assert!(ws.frames_received >= m.acked + m.delivered, "{ws:?} {m:?}");
}

#[test]
fn the_regions_scenario_in_short_accounts_per_region() {
    let scratch = Scratch::new();
    // 15 s → 3 s, three regions with their own delays; the identities hold in each.
    let path = scratch.scenario("regions", shortened("regions", 0.2, "1s"));
    let s = run_quiet(path, scratch.out("run"), None).summary;
    assert!(!s.regions.is_empty());
    let started: u64 = s.regions.values().map(|r| r.arrivals.started).sum();
    assert_eq!(started, s.arrivals.started, "each user is in one region");
}

#[test]
fn the_presence_soak_in_short_accounts_for_returns_and_closed_users() {
    let scratch = Scratch::new();
    // 60 s → 4.2 s: open arrivals, users coming back, then a closed phase of looping users.
    let path = scratch.scenario("presence-soak", shortened("presence-soak", 0.07, "1s"));
    let s = run_quiet(path, scratch.out("run"), None).summary;
    // Each return and each closed-phase user is a started arrival with an outcome of its own.
    assert!(s.arrivals.started > 0);
}
