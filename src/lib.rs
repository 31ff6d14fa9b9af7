//! inrush: load testing and surge simulation for messaging services.
//!
//! Data flows one way: scenario file → compiled scenario (`Plan`) → schedule → workers start
//! users (runtime, clients) → per-worker recorders → collector → summary and reports → verdict.
//! One plain function per command below, each taking its own options. docs/architecture.md maps
//! the layers and what each change touches.

pub mod capacity;
pub mod cli;
pub mod clients;
pub mod compare;
pub mod compiled;
pub mod decimals;
pub mod duration;
pub mod error;
pub mod estimate;
pub mod gate;
pub mod input_file;
pub mod merge;
pub mod metrics;
pub mod os_limits;
pub mod report;
pub mod resource_usage;
pub mod run;
pub mod runtime;
pub mod scenario;
pub mod schedule;
pub mod swarm;
pub mod target;

use std::path::Path;

pub use error::Error;

/// The starter scenario `inrush init` writes: the shipped quickstart, told how to run itself.
const STARTER: &str = include_str!("../scenarios/quickstart.toml");

/// `inrush init`: writes `quickstart.toml` into `dir` (created if missing) and returns its path.
/// An existing file is kept unless `force`: it may be the user's own edit.
pub fn init(dir: &Path, force: bool) -> Result<std::path::PathBuf, Error> {
    let path = dir.join("quickstart.toml");
    if path.exists() && !force {
        return Err(Error::Usage(format!(
            "{} already exists; keep it, or pass --force to replace it",
            path.display()
        )));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Usage(format!("cannot create {}: {e}", dir.display())))?;
    let text = STARTER.replace(
        "cargo run --release -- run scenarios/quickstart.toml",
        &format!("inrush run {}", path.display()),
    );
    std::fs::write(&path, text)
        .map_err(|e| Error::Usage(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// `inrush validate`: parses and checks a scenario, returns a short description of its plan.
pub fn validate(path: &Path) -> Result<String, Error> {
    validate_with(path, &compiled::inputs::Inputs::default())
}

/// [`validate`] with what the command line adds (`-e` values, scales).
pub fn validate_with(path: &Path, inputs: &compiled::inputs::Inputs) -> Result<String, Error> {
    let plan = compiled::load_with(path, inputs)?;
    Ok(compiled::describe(&plan))
}

/// `inrush plan`: estimates what running a scenario takes, sending nothing; prints the report
/// and writes `plan.json` and the chart into `out` (default `reports/<scenario>-plan-<stamp>/`).
pub fn plan(
    path: &Path,
    seed: Option<u64>,
    out: Option<&Path>,
    latency: std::time::Duration,
) -> Result<(estimate::Estimate, std::path::PathBuf), Error> {
    plan_for_workers(path, seed, out, latency, None)
}

/// [`plan`] for a run on `workers` worker threads (`run --workers`; default: as a run on this
/// machine). The caps and the closed phases' users are split across them as the run splits them.
pub fn plan_for_workers(
    path: &Path,
    seed: Option<u64>,
    out: Option<&Path>,
    latency: std::time::Duration,
    workers: Option<usize>,
) -> Result<(estimate::Estimate, std::path::PathBuf), Error> {
    let inputs = compiled::inputs::Inputs::seed(seed);
    plan_with(path, &inputs, out, latency, workers)
}

/// [`plan_for_workers`] with what the command line adds (`-e` values, scales, a seed).
pub fn plan_with(
    path: &Path,
    inputs: &compiled::inputs::Inputs,
    out: Option<&Path>,
    latency: std::time::Duration,
    workers: Option<usize>,
) -> Result<(estimate::Estimate, std::path::PathBuf), Error> {
    let plan = compiled::load_with(path, inputs)?;
    let estimate = match workers {
        Some(n) => estimate::estimate_with_workers(&plan, latency, n as u64),
        None => estimate::estimate(&plan, latency),
    };
    let dir = match out {
        Some(dir) => dir.to_path_buf(),
        None => {
            let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string()
                .replace(['-', ':'], "");
            Path::new("reports").join(format!("{}-plan-{stamp}", plan.name))
        }
    };
    let phases: Vec<metrics::timeline::PhaseSpan> = plan
        .phases
        .iter()
        .map(|p| metrics::timeline::PhaseSpan {
            name: p.name.clone(),
            start_s: p.start.as_secs_f64(),
            end_s: p.end().as_secs_f64(),
        })
        .collect();
    estimate::render::write(&dir, &estimate, &phases)?;
    report::console::print(&estimate::render::text(&estimate));
    if plan.capacity.is_set() {
        // The scenario says how `find-capacity` searches it: what that search will take.
        let preview = capacity::dry_run(&capacity::CapacityOptions {
            scenario: path.to_path_buf(),
            inputs: inputs.clone(),
            workers,
            ..Default::default()
        });
        // The plan of the run stands on its own: a search that could not start is said, not
        // made the plan's failure (`find-capacity` itself refuses it with exit 2).
        match preview {
            Ok(p) => report::console::print(&capacity::preview::text(&p)),
            Err(e) => report::console::println(&format!("find-capacity: would not start: {e}")),
        }
    }
    report::console::println(&format!("plan: {}", dir.display()));
    Ok((estimate, dir))
}

/// `inrush plan --kubernetes`: what `plan` does, and the manifests of deploy/kubernetes/ for
/// this scenario in `<plan dir>/kubernetes/`: N shards from the plan's verdict (or `shards`),
/// each pod's CPU and memory from one shard's plan (`--shard 0/N`).
pub fn plan_kubernetes(
    path: &Path,
    inputs: &compiled::inputs::Inputs,
    out: Option<&Path>,
    latency: std::time::Duration,
    workers: Option<usize>,
    shards: Option<u64>,
    image: &str,
) -> Result<std::path::PathBuf, Error> {
    if !inputs.shard.is_whole() {
        return Err(Error::Usage(
            "--kubernetes plans every shard of the scenario: leave --shard out (--shards N sets \
             how many)"
                .into(),
        ));
    }
    let (whole, dir) = plan_with(path, inputs, out, latency, workers)?;
    let v = &whole.verdict;
    let n = shards.unwrap_or(v.processes.max(v.machines)).max(1);
    let one_shard = compiled::inputs::Inputs {
        shard: compiled::shard::Shard { index: 0, count: n },
        ..inputs.clone()
    };
    let plan = compiled::load_with(path, &one_shard)?;
    let one = match workers {
        Some(w) => estimate::estimate_with_workers(&plan, latency, w as u64),
        None => estimate::estimate(&plan, latency),
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read scenario {}: {e}", path.display())))?;
    // Ten minutes to apply the manifests and for the pods to start; edit it as needed.
    let start = std::time::SystemTime::now() + std::time::Duration::from_secs(600);
    let stamp = humantime::format_rfc3339_seconds(start).to_string();
    let pods = estimate::kubernetes::Pods {
        scenario: plan.name.clone(),
        scenario_text: text,
        shards: n,
        cpu_cores: one.resources.cpu_cores,
        peak_users: one.peak.active_users,
        descriptors: one.resources.descriptors,
        image: image.to_string(),
        start_at: stamp.clone(),
        run_id: format!("{}-{}", plan.name, stamp.replace(['-', ':'], "")).to_lowercase(),
        run_args: pod_args(&plan, inputs),
    };
    let k8s = dir.join("kubernetes");
    std::fs::create_dir_all(&k8s).map_err(|e| Error::output("cannot create", &k8s, e))?;
    report::write_file(
        &k8s,
        "shards.yaml",
        estimate::kubernetes::shards(&pods).as_bytes(),
    )?;
    report::write_file(
        &k8s,
        "merge-job.yaml",
        estimate::kubernetes::merge_job(&pods).as_bytes(),
    )?;
    report::console::println(&format!(
        "kubernetes: {n} shards ({}); each pod {} m CPU, {} MiB, ~{} open files; INRUSH_START_AT {}",
        match shards {
            Some(_) => "--shards".to_string(),
            None if n == 1 => "one process suffices".to_string(),
            None => format!("the verdict: {}", v.reasons.join("; ")),
        },
        pods.cpu_millis(),
        pods.memory_mib(),
        pods.descriptors,
        pods.start_at
    ));
    report::console::println(&format!(
        "kubectl apply -f {}; when job/inrush-shards is complete: kubectl apply -f {}",
        k8s.join("shards.yaml").display(),
        k8s.join("merge-job.yaml").display()
    ));
    Ok(k8s)
}

/// What every pod adds to the scenario, as the plan did: the seed (always: a scenario without
/// one would draw a new seed per pod, and shards of different seeds do not merge) and the scales.
fn pod_args(plan: &compiled::Plan, inputs: &compiled::inputs::Inputs) -> Vec<String> {
    let mut args = vec!["--seed".to_string(), plan.seed.to_string()];
    match inputs.time {
        Some(compiled::inputs::TimeScale::Factor(f)) => {
            args.extend(["--time-scale".into(), f.to_string()])
        }
        Some(compiled::inputs::TimeScale::Total(d)) => {
            args.extend(["--duration".into(), format!("{}ms", d.as_millis())])
        }
        None => {}
    }
    if let Some(f) = inputs.rate_scale {
        args.extend(["--rate-scale".into(), f.to_string()]);
    }
    args
}

/// Reads a finished run back from its directory: the summary with its statistics rebuilt from
/// `latency.hlog`, re-gated against the thresholds it was run with plus `extra_thresholds`;
/// the timeline; the histograms.
pub fn rebuild(
    dir: &Path,
    extra_thresholds: &[String],
) -> Result<
    (
        report::summary::Summary,
        metrics::timeline::Timeline,
        report::rebuild::RunHistograms,
    ),
    Error,
> {
    let (mut summary, timeline, histograms) = report::rebuild::rebuild(dir)?;
    gate::regate(
        &mut summary,
        &dir.join(report::files::SUMMARY),
        extra_thresholds,
    )?;
    Ok((summary, timeline, histograms))
}

/// `inrush report`: rebuilds a run directory's artifacts, re-gates it and prints its table;
/// with extra `thresholds` it only re-gates, unless `save`.
pub fn report(
    dir: &Path,
    thresholds: &[String],
    save: bool,
) -> Result<report::summary::Summary, Error> {
    let (summary, timeline, histograms) = rebuild(dir, thresholds)?;
    // A what-if gate (`--threshold` without `--save`) must not change the run's record.
    if thresholds.is_empty() || save {
        report::write_run(
            &report::FinishedRun::new(dir, &summary, &timeline).with_histograms(histograms),
        )?;
    }
    report::console::print(&report::terminal::render(&summary));
    report::console::println(&format!("report: {}", dir.display()));
    Ok(summary)
}

/// `inrush compare`: compares two run directories against tolerances (`--max-regression`),
/// writes `compare.json`, `compare.md`, the overlay chart and `compare.html` into `out` (default
/// `reports/compare-<base>-vs-<new>/`) and prints the table. The decision rule is documented in
/// [`compare`](mod@compare).
pub fn compare(
    base: &Path,
    new: &Path,
    max_regression: &str,
    out: Option<&Path>,
) -> Result<compare::Comparison, Error> {
    let tolerances = compare::Tolerances::parse(max_regression).map_err(Error::Usage)?;
    let base_run = compare::load::run(base, "BASE")?;
    let new_run = compare::load::run(new, "NEW")?;
    let comparison = compare::compare_runs(&base_run, &new_run, &tolerances)?;
    let out = out.map_or_else(|| compare::default_out(base, new), Path::to_path_buf);
    compare::write(&out, &comparison, &base_run, &new_run)?;
    report::console::print(&compare::render_text(&comparison));
    report::console::println(&format!("report: {}", out.display()));
    Ok(comparison)
}

/// `inrush merge`: one run directory from the run directories of N shards of one scenario
/// (`run --shard i/N`), gated on the merged data; prints its table. The caller maps its
/// verdict to the exit code, as for `run`.
pub fn merge(opts: &merge::MergeOptions) -> Result<report::summary::Summary, Error> {
    let merged = merge::merge(opts)?;
    if !opts.quiet {
        report::console::print(&report::terminal::render(&merged.summary));
    }
    report::console::println(&format!("report: {}", merged.dir.display()));
    Ok(merged.summary)
}

/// `inrush serve`'s TLS: a certificate chain and key (PEM files), and optionally the CAs whose
/// client certificates it requires.
#[derive(Debug, Clone)]
pub struct ServeTls {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub client_ca: Option<std::path::PathBuf>,
}

/// `inrush serve`: runs the built-in messenger on `listen` with `knobs` until Ctrl-C, over TLS
/// when `tls` is given.
pub fn serve(
    listen: std::net::SocketAddr,
    knobs: target::Knobs,
    tls: Option<ServeTls>,
) -> Result<(), Error> {
    knobs.validate().map_err(Error::Usage)?;
    let tls = match &tls {
        Some(t) => Some(
            target::TlsServer::from_pem_files(&t.cert, &t.key, t.client_ca.as_deref())
                .map_err(|e| Error::Usage(format!("--tls-cert/--tls-key: {e}")))?,
        ),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Run(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let server = target::start_with(listen, knobs, tls.as_ref())
            .await
            .map_err(|e| Error::Run(format!("cannot listen on {listen}: {e}")))?;
        report::console::eprintln(&format!(
            "inrush built-in messenger listening on {}://{} (Ctrl-C to stop)",
            if tls.is_some() { "https" } else { "http" },
            server.addr
        ));
        let _ = tokio::signal::ctrl_c().await;
        server.shutdown().await;
        Ok(())
    })
}
