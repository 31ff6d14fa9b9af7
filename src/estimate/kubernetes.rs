//! `inrush plan --kubernetes`: the manifests of deploy/kubernetes/ for one scenario, with the
//! number of shards from the plan's verdict and each pod's requests from one shard's plan. The
//! shipped files are the templates (one source for both), their example values replaced.

use std::fmt::Write;

/// What the manifests are filled in with.
#[derive(Debug, Clone)]
pub struct Pods {
    /// The scenario's name (the ConfigMap's file is `scenario.toml` whatever it was called).
    pub scenario: String,
    /// The scenario file's text, carried in the ConfigMap.
    pub scenario_text: String,
    pub shards: u64,
    /// One shard's generator CPU at the peak, cores.
    pub cpu_cores: f64,
    /// One shard's active users at the peak.
    pub peak_users: u64,
    /// One shard's open files at the peak.
    pub descriptors: u64,
    pub image: String,
    /// `INRUSH_START_AT` (RFC 3339): the shards' common start.
    pub start_at: String,
    /// The results' directory name on the volume.
    pub run_id: String,
    /// More `inrush run` flags every pod takes: the seed, the scales the plan was made with.
    pub run_args: Vec<String>,
}

const SHARDS_JOB: &str = include_str!("../../deploy/kubernetes/shards-job.yaml");
const MERGE_JOB: &str = include_str!("../../deploy/kubernetes/merge-job.yaml");
const VOLUME: &str = include_str!("../../deploy/kubernetes/results-pvc.yaml");
const IMAGE: &str = "ghcr.io/example/inrush:0.1.0";

/// Memory a shard's process holds besides its users (peak RSS of an idle run: ~30 MiB).
const BASE_MIB: u64 = 64;

impl Pods {
    /// CPU request in millicores: the plan's peak, at least a tenth of a core.
    pub fn cpu_millis(&self) -> u64 {
        ((self.cpu_cores * 1000.0).ceil() as u64).max(100)
    }

    /// Memory request in MiB: the planning figure per active user at the peak, plus the base.
    pub fn memory_mib(&self) -> u64 {
        let users = self
            .peak_users
            .saturating_mul(crate::compiled::sizing::BYTES_PER_USER);
        users.div_ceil(1 << 20) + BASE_MIB
    }
}

/// `shards.yaml`: the scenario's ConfigMap, the results volume and the shards' Indexed Job —
/// one `kubectl apply -f`.
pub fn shards(p: &Pods) -> String {
    let mut out = format!(
        "# inrush plan --kubernetes: {} shards of `{}`, each pod sized from `inrush plan --shard 0/{}`\n\
         # (CPU {} m at the peak, {} active users → {} MiB, ~{} open files).\n\
         # kubectl apply -f shards.yaml; when job/inrush-shards is complete: kubectl apply -f merge-job.yaml\n\
         # Only scenario.toml is in the ConfigMap: files it reads beside it (a curve's CSV, feeders,\n\
         # TLS certificates) must be added to it; -e values are not carried (they may be secrets).\n",
        p.shards,
        p.scenario,
        p.shards,
        p.cpu_millis(),
        p.peak_users,
        p.memory_mib(),
        p.descriptors
    );
    out.push_str("---\n");
    out.push_str(&config_map(&p.scenario_text));
    out.push_str("---\n");
    out.push_str(VOLUME);
    out.push_str("---\n");
    let n = p.shards.to_string();
    let job = [
        ("completions: 4", format!("completions: {n}")),
        ("parallelism: 4", format!("parallelism: {n}")),
        ("maxFailedIndexes: 4", format!("maxFailedIndexes: {n}")),
        (
            "- name: INRUSH_SHARDS\n              value: \"4\"",
            format!("- name: INRUSH_SHARDS\n              value: \"{n}\""),
        ),
        (
            "value: \"2026-12-01T06:00:00Z\"",
            format!("value: \"{}\"", p.start_at),
        ),
        ("value: \"quickstart\"", format!("value: \"{}\"", p.run_id)),
        ("cpu: \"1\"", format!("cpu: {}m", p.cpu_millis())),
        ("memory: 512Mi", format!("memory: {}Mi", p.memory_mib())),
        ("memory: 1Gi", format!("memory: {}Mi", 2 * p.memory_mib())),
        (IMAGE, p.image.clone()),
        (
            "args: [\"--quiet\"]",
            format!("args: {}", flow_list(&p.run_args)),
        ),
    ];
    out.push_str(&replace_all(SHARDS_JOB, &job));
    out
}

/// `merge-job.yaml`: the merge, applied once the shards' Job is complete.
pub fn merge_job(p: &Pods) -> String {
    replace_all(
        MERGE_JOB,
        &[
            ("value: \"quickstart\"", format!("value: \"{}\"", p.run_id)),
            (IMAGE, p.image.clone()),
        ],
    )
}

/// The template with each example value replaced (every one is in the shipped file: the unit
/// test below renders them all).
fn replace_all(template: &str, pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .fold(template.to_string(), |t, (from, to)| t.replace(from, to))
}

/// `["--quiet", …]`: a YAML flow sequence (JSON strings are YAML strings).
fn flow_list(args: &[String]) -> String {
    let all: Vec<&str> = std::iter::once("--quiet")
        .chain(args.iter().map(String::as_str))
        .collect();
    serde_json::to_string(&all).unwrap_or_else(|_| "[\"--quiet\"]".into())
}

/// The ConfigMap holding the scenario, as a YAML block scalar (any text: every line indented).
fn config_map(text: &str) -> String {
    let mut out = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: inrush-scenario\n  labels:\n    \
         app.kubernetes.io/name: inrush\ndata:\n  scenario.toml: |\n",
    );
    for line in text.lines() {
        let _ = writeln!(out, "    {line}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods() -> Pods {
        Pods {
            scenario: "day".into(),
            scenario_text: "name = \"day\"\n\n[load]\n\tphases = []\n".into(),
            shards: 7,
            cpu_cores: 0.42,
            peak_users: 10_000,
            descriptors: 20_064,
            image: "registry.local/inrush:1".into(),
            start_at: "2026-12-01T07:00:00Z".into(),
            run_id: "day-1".into(),
            run_args: vec![
                "--seed".into(),
                "5".into(),
                "--rate-scale".into(),
                "2".into(),
            ],
        }
    }

    #[test]
    fn every_example_value_of_the_templates_is_filled_in() {
        let p = pods();
        let text = shards(&p);
        for want in [
            "completions: 7",
            "parallelism: 7",
            "maxFailedIndexes: 7",
            "value: \"7\"",
            "value: \"2026-12-01T07:00:00Z\"",
            "value: \"day-1\"",
            "cpu: 420m",
            "memory: 689Mi",
            "memory: 1378Mi",
            "image: registry.local/inrush:1",
            "    \tphases = []",
            "kind: PersistentVolumeClaim",
            r#"args: ["--quiet","--seed","5","--rate-scale","2"]"#,
        ] {
            assert!(text.contains(want), "{want} in:\n{text}");
        }
        for gone in [
            "ghcr.io/example",
            "\"quickstart\"",
            "completions: 4",
            "512Mi",
        ] {
            assert!(!text.contains(gone), "{gone} left in:\n{text}");
        }
        let merge = merge_job(&p);
        assert!(merge.contains("value: \"day-1\"") && merge.contains("registry.local/inrush:1"));
        // 10 000 users × 64 KiB = 625 MiB, plus the base.
        assert_eq!(p.memory_mib(), 625 + BASE_MIB);
    }
}
