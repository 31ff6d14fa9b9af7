//! Parses the command line, calls the library, maps the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use inrush::cli::{Cli, Command};
use inrush::report::console;
use inrush::report::summary::Verdict;

fn exit_code(verdict: Verdict) -> ExitCode {
    match verdict {
        Verdict::Passed => ExitCode::SUCCESS,
        Verdict::Failed => ExitCode::from(1),
        Verdict::Interrupted => ExitCode::from(3),
        Verdict::Inconclusive => ExitCode::from(4),
    }
}

fn find_capacity(args: inrush::cli::CapacityArgs) -> Result<ExitCode, inrush::Error> {
    use inrush::capacity::{find_capacity, CapacityOptions, Outcome};
    let inputs = inrush::compiled::inputs::Inputs {
        seed: args.seed,
        env: inrush::compiled::inputs::Env::from_pairs(args.env.iter().map(String::as_str))
            .map_err(inrush::Error::Usage)?,
        ..Default::default()
    };
    let opts = CapacityOptions {
        scenario: args.file,
        inputs,
        from: args.from,
        max: args.max,
        precision: args.precision,
        warmup: args.warmup,
        measure: args.step_duration,
        target: args.target,
        out: args.out,
        workers: args.workers,
        metric: args.metric,
        thresholds: args.thresholds,
        accept_overload: args.accept_overload,
        quiet: args.quiet,
    };
    if args.dry_run {
        let preview = inrush::capacity::dry_run(&opts)?;
        console::print(&inrush::capacity::preview::text(&preview));
        return Ok(ExitCode::SUCCESS);
    }
    let found = find_capacity(&opts)?;
    Ok(match found.outcome {
        Outcome::Found => ExitCode::SUCCESS,
        Outcome::FailsLowest => ExitCode::from(1),
        Outcome::Interrupted => ExitCode::from(3),
        Outcome::Inconclusive => ExitCode::from(4),
    })
}

/// mimalloc instead of glibc's malloc: a signup costs the generator 12.7 % fewer instructions
/// (629 k against 721 k, `bench/live_overhead.sh`'s plain mode), the hot path being made of
/// small short-lived allocations (request heads, frames, JSON values), and idle connected users
/// held less memory in most rounds of the bench (bench/README.md, "Allocator"). Linux only: the
/// C it compiles is built where ring's is. The `system-allocator` feature keeps glibc's, for
/// heap profilers.
#[cfg(all(target_os = "linux", not(feature = "system-allocator")))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// No transparent huge pages for the process, as `MIMALLOC_ALLOW_THP=0` would do (mimalloc
/// reads its options as it starts, before `main`). mimalloc asks for huge pages on the memory it
/// maps (`madvise`), and where the host defragments for such a fault (`defrag` = `madvise`, the
/// kernel's default) a page fault in a worker may compact memory on the spot: stalls of
/// milliseconds in the schedule. The signup sweep's highest rate with lag p99 < 5 ms was 600 and
/// 1 600/s with them, 3 200 and 1 600/s without (bench/README.md, "Huge pages off"). The flag is
/// looked at on every fault, so memory mapped before this call is covered too.
#[cfg(all(target_os = "linux", not(feature = "system-allocator")))]
fn without_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes no pointer; it sets a flag of this process. An error
    // (a kernel without the option) leaves the kernel's default, which only costs the stalls.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(not(all(target_os = "linux", not(feature = "system-allocator"))))]
fn without_huge_pages() {}

fn main() -> ExitCode {
    without_huge_pages();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => args.inputs.with_seed(args.seed).and_then(|inputs| {
            inrush::run::run(&inrush::run::RunOptions {
                scenario: args.file,
                target: args.target,
                out: args.out,
                inputs,
                workers: args.workers,
                thresholds: args.thresholds,
                accept_overload: args.accept_overload,
                quiet: args.quiet,
                silent: false,
                memory_budget: args.memory_budget,
                force: args.force,
                trace: args.trace,
                live: inrush::run::LiveOptions {
                    stream: args.stream,
                    metrics: args.metrics,
                    dashboard: args.dashboard,
                    hold: args.hold,
                },
                interrupt: None,
                start_at: args.start_at,
            })
            .map(|outcome| exit_code(outcome.summary.verdict))
        }),
        Command::Report {
            dir,
            thresholds,
            save,
        } => inrush::report(&dir, &thresholds, save).map(|summary| exit_code(summary.verdict)),
        Command::Compare {
            base,
            new,
            max_regression,
            out,
        } => {
            inrush::compare(&base, &new, &max_regression, out.as_deref()).map(|c| match c.verdict {
                inrush::compare::Verdict::Passed => ExitCode::SUCCESS,
                inrush::compare::Verdict::Regressed => ExitCode::from(1),
            })
        }
        Command::Validate { file, inputs } => inputs
            .with_seed(None)
            .and_then(|inputs| inrush::validate_with(&file, &inputs))
            .map(|text| {
                console::print(&text);
                ExitCode::SUCCESS
            }),
        Command::Plan(args) => args
            .inputs
            .with_seed(args.seed)
            .map(|inputs| inrush::compiled::inputs::Inputs {
                target: args.target,
                ..inputs
            })
            .and_then(|inputs| match args.kubernetes {
                true => inrush::plan_kubernetes(
                    &args.file,
                    &inputs,
                    args.out.as_deref(),
                    args.latency,
                    args.workers,
                    args.shards,
                    &args.image,
                )
                .map(|_| ()),
                false => inrush::plan_with(
                    &args.file,
                    &inputs,
                    args.out.as_deref(),
                    args.latency,
                    args.workers,
                )
                .map(|_| ()),
            })
            .map(|()| ExitCode::SUCCESS),
        Command::Init { dir, force } => inrush::init(&dir, force).map(|path| {
            console::println(&format!("wrote {}", path.display()));
            console::println(&format!("next: inrush run {}", path.display()));
            ExitCode::SUCCESS
        }),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            // Generated whole, then printed: clap_complete panics on a failed write.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "inrush", &mut script);
            console::print_bytes(&script);
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut page)
                .map(|()| {
                    console::print_bytes(&page);
                    ExitCode::SUCCESS
                })
                .map_err(|e| inrush::Error::Usage(format!("cannot write the manual page: {e}")))
        }
        Command::FindCapacity(args) => find_capacity(args),
        Command::Merge(args) => inrush::merge(&inrush::merge::MergeOptions {
            dirs: args.dirs,
            out: args.out,
            force: args.force,
            max_skew: args.max_skew,
            quiet: args.quiet,
        })
        .map(|summary| exit_code(summary.verdict)),
        Command::Serve(args) => {
            inrush::serve(args.listen, args.knobs(), args.tls()).map(|()| ExitCode::SUCCESS)
        }
    };
    result.unwrap_or_else(|e| {
        console::eprintln(&format!("error: {e}"));
        ExitCode::from(if e.is_usage() { 2 } else { 3 })
    })
}
