//! `latency.hlog`: the standard HdrHistogram interval log, one tagged histogram per metric and
//! interval, readable by HdrHistogram's own tools (HistogramLogProcessor, HdrHistogramVisualizer).
//! Values are microseconds; the header sets a max-value divisor of 1000 so tools show
//! milliseconds. Latency from the intended start is tagged with the metric's name; the service
//! time (from the actual start) with `<name>.service`. The generator's own measurements
//! (`schedule_lag`, `loop_lag`) have no service time and only their name's tag. A name a tag
//! cannot hold (a space or comma) is percent-encoded ([`tag`]).

mod claims;
mod tag;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriter, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use super::collector::Interval;
use super::Catalog;

pub const FILE_NAME: &str = "latency.hlog";

/// Starts a log: writes the header (start time of the run, units) into `out`.
pub fn begin<'a, 'b, W: Write>(
    out: &'a mut W,
    serializer: &'b mut V2DeflateSerializer,
    started_at: SystemTime,
) -> std::io::Result<IntervalLogWriter<'a, 'b, W, V2DeflateSerializer>> {
    IntervalLogWriterBuilder::new()
        .add_comment("inrush latency log: values in microseconds; tag = metric, <metric>.service = service time")
        .add_comment(tag::NOTE)
        .with_start_time(started_at)
        .with_base_time(started_at)
        .with_max_value_divisor(1000.0)
        .begin_log_with(out, serializer)
}

/// Appends one merged interval: a histogram per metric that has samples. `regions` are the
/// run's region names, in the order of `iv.regions`.
/// Then the same per region, tagged `<region>:<metric>` and `<region>:<metric>.service`, so a
/// region's statistics can be rebuilt from the log as the run's are.
pub fn write_interval<W: Write>(
    log: &mut IntervalLogWriter<'_, '_, W, V2DeflateSerializer>,
    catalog: &Catalog,
    regions: &[String],
    iv: &Interval,
) -> std::io::Result<()> {
    write_recorder(log, catalog, "", &iv.recorder, iv)?;
    for (name, rec) in regions.iter().zip(&iv.regions) {
        write_recorder(log, catalog, &format!("{name}{REGION_SEPARATOR}"), rec, iv)?;
    }
    Ok(())
}

/// Separates a region's name from the metric in its hlog tags.
pub const REGION_SEPARATOR: char = ':';

fn write_recorder<W: Write>(
    log: &mut IntervalLogWriter<'_, '_, W, V2DeflateSerializer>,
    catalog: &Catalog,
    prefix: &str,
    recorder: &super::Recorder,
    iv: &Interval,
) -> std::io::Result<()> {
    let duration = iv.end.saturating_sub(iv.start);
    for (m, name) in catalog.all() {
        let rec = recorder.metric(m);
        if rec.latency.is_empty() {
            continue;
        }
        let tag = format!("{prefix}{name}");
        let service_tag = format!("{prefix}{name}.service");
        let mut tags = vec![(&rec.latency, &tag)];
        if !m.is_generator() {
            tags.push((&rec.service, &service_tag));
        }
        for (h, name) in tags {
            let tag = tag::encode(name);
            log.write_histogram(h, iv.start, duration, Tag::new(&tag))
                .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        }
    }
    Ok(())
}

/// Writes a whole log to `path`: the header (`started_at`), then `entries` in their order —
/// the log of a merged run (`inrush merge`).
pub fn write(path: &Path, started_at: SystemTime, entries: &[Entry]) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    {
        let mut log = begin(&mut buf, &mut serializer, started_at)?;
        for e in entries {
            let tag = e.tag.as_deref().map(tag::encode);
            log.write_histogram(
                &e.histogram,
                e.start,
                e.duration,
                tag.as_deref().and_then(Tag::new),
            )
            .map_err(|err| std::io::Error::other(format!("{err:?}")))?;
        }
    }
    std::fs::write(path, buf)
}

/// One histogram read back from a log.
#[derive(Debug)]
pub struct Entry {
    pub tag: Option<String>,
    pub start: Duration,
    pub duration: Duration,
    pub histogram: Histogram<u64>,
}

/// Reads every interval histogram of a log file. A line that is not one is refused with the
/// file, its line number and tag, and what is wrong in words (the log is text a user may cut
/// or edit; HdrHistogram's own errors say only a byte offset). A histogram whose header claims
/// more than inrush writes is refused before it is built ([`claims`]): what the reader holds per
/// line is bounded, however the file was made.
pub fn read(path: &Path) -> Result<Vec<Entry>, String> {
    let bytes = crate::input_file::read(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut deserializer = Deserializer::new();
    let mut out = Vec::new();
    // Whether the log's header says its tags are percent-encoded (a log of an older inrush
    // does not, and its tags are taken as they stand).
    let mut encoded = false;
    // Line by line, each through its own iterator: every line of the format stands alone
    // (the header's times are kept as they are written), and an error then knows its line.
    for (i, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        let at = |what: String| {
            format!(
                "{}:{}: {} {what}: the log is damaged or edited",
                path.display(),
                i + 1,
                line_tag(line)
            )
        };
        if line.strip_prefix(b"#").map(<[u8]>::trim_ascii) == Some(tag::NOTE.as_bytes()) {
            encoded = true;
        }
        for entry in IntervalLogIterator::new(line) {
            let entry = entry.map_err(|_| {
                at(if line.ends_with(b"\n") {
                    "is not an interval log line".into()
                } else {
                    "is cut short (no end of line)".into()
                })
            })?;
            let LogEntry::Interval(iv) = entry else {
                continue;
            };
            let raw = base64::engine::general_purpose::STANDARD
                .decode(iv.encoded_histogram())
                .map_err(|e| {
                    at(format!(
                        "has a histogram that is not base64 ({})",
                        base64_words(&e)
                    ))
                })?;
            claims::check(&raw).map_err(|e| at(format!("has a histogram that {e}")))?;
            let histogram: Histogram<u64> =
                deserializer.deserialize(&mut raw.as_slice()).map_err(|e| {
                    at(format!(
                        "has no histogram HdrHistogram can read ({})",
                        histogram_words(&e)
                    ))
                })?;
            out.push(Entry {
                tag: iv.tag().map(|t| match encoded {
                    true => tag::decode(t.as_str()).into_owned(),
                    false => t.as_str().to_string(),
                }),
                start: iv.start_timestamp(),
                duration: iv.duration(),
                histogram,
            });
        }
    }
    Ok(out)
}

/// `interval of tag `verify``, or `line` for a line without a tag: taken from the text, so it
/// is said even for a line that does not parse.
fn line_tag(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    match text
        .strip_prefix("Tag=")
        .and_then(|rest| rest.split(',').next())
    {
        Some(tag) => format!("interval of tag `{tag}`"),
        None if text.starts_with('#') => "header line".to_string(),
        None => "untagged line".to_string(),
    }
}

fn base64_words(e: &base64::DecodeError) -> String {
    use base64::DecodeError as D;
    match e {
        D::InvalidByte(at, b) | D::InvalidLastSymbol(at, b) => {
            format!(
                "character `{}` at position {at}",
                char::from(*b).escape_default()
            )
        }
        D::InvalidLength(n) => format!("{n} characters, not a length base64 can have"),
        D::InvalidPadding => "its `=` padding is wrong".into(),
    }
}

fn histogram_words(e: &hdrhistogram::serialization::DeserializeError) -> String {
    use hdrhistogram::serialization::DeserializeError as D;
    match e {
        D::IoError(_) => "it ends early".into(),
        D::InvalidCookie => "not an HdrHistogram encoding".into(),
        D::UnsupportedFeature => "a feature this reader lacks".into(),
        D::UnsuitableCounterType => "a count too large".into(),
        D::InvalidParameters => "its value range is impossible".into(),
        D::UsizeTypeTooSmall => "too large for this machine".into(),
        D::EncodedArrayTooLong => "more counts than its value range holds".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_round_trip() {
        let catalog = Catalog::new(["verify"]);
        let verify = catalog.id("verify").expect("verify");
        let mut iv = Interval {
            index: 0,
            start: Duration::from_secs(2),
            end: Duration::from_millis(3500),
            recorder: crate::metrics::Recorder::new(catalog.len()),
            regions: Vec::new(),
            active_users: 0,
            open_websockets: 0,
            open_http: 0,
            worker_cpu_max: 0.0,
        };
        for ms in [1, 5, 250] {
            iv.recorder.ok(
                verify,
                Duration::ZERO,
                Duration::from_millis(ms / 2),
                Duration::from_millis(ms),
            );
        }
        let mut buf = Vec::new();
        let mut ser = V2DeflateSerializer::new();
        {
            let mut log = begin(&mut buf, &mut ser, SystemTime::UNIX_EPOCH).expect("header");
            write_interval(&mut log, &catalog, &[], &iv).expect("interval");
        }
        let dir = std::env::temp_dir().join(format!("inrush-hlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("t.hlog");
        std::fs::write(&path, &buf).expect("write");
        let entries = read(&path).expect("read back");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].tag.as_deref(), Some("verify"));
        assert_eq!(entries[1].tag.as_deref(), Some("verify.service"));
        assert_eq!(entries[0].start, Duration::from_secs(2));
        assert_eq!(entries[0].duration, Duration::from_millis(1500));
        assert_eq!(entries[0].histogram.len(), 3);
        assert!(entries[0]
            .histogram
            .equivalent(entries[0].histogram.max(), 250_000));
        let _ = std::fs::remove_dir_all(dir);
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("inrush-hlog-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir.join("latency.hlog")
    }

    #[test]
    fn names_with_spaces_and_commas_keep_their_tags() {
        let catalog = Catalog::new(["sign up", "a,b", "50%"]);
        let mut iv = Interval {
            index: 0,
            start: Duration::ZERO,
            end: Duration::from_secs(1),
            recorder: crate::metrics::Recorder::new(catalog.len()),
            regions: Vec::new(),
            active_users: 0,
            open_websockets: 0,
            open_http: 0,
            worker_cpu_max: 0.0,
        };
        for name in ["sign up", "a,b", "50%"] {
            let m = catalog.id(name).expect("metric");
            let ms = Duration::from_millis(3);
            iv.recorder.ok(m, Duration::ZERO, ms, ms);
        }
        let mut buf = Vec::new();
        let mut ser = V2DeflateSerializer::new();
        {
            let mut log = begin(&mut buf, &mut ser, SystemTime::UNIX_EPOCH).expect("header");
            write_interval(&mut log, &catalog, &[], &iv).expect("interval");
        }
        let text = String::from_utf8(buf.clone()).expect("text");
        assert!(text.contains("Tag=sign%20up,"), "{text}");
        assert!(text.contains("Tag=a%2Cb.service,"), "{text}");
        let path = scratch("names");
        std::fs::write(&path, &buf).expect("write");
        let tags: Vec<_> = read(&path)
            .expect("read back")
            .into_iter()
            .map(|e| e.tag)
            .collect();
        let want = [
            "sign up",
            "sign up.service",
            "a,b",
            "a,b.service",
            "50%",
            "50%.service",
        ];
        assert_eq!(tags, want.map(|t| Some(t.to_string())));
        // A merged run's log is written by `write`, read back the same way.
        let entries = read(&path).expect("read back");
        write(&path, SystemTime::UNIX_EPOCH, &entries).expect("rewrite");
        let again: Vec<_> = read(&path)
            .expect("reread")
            .into_iter()
            .map(|e| e.tag)
            .collect();
        assert_eq!(again, tags);
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    /// A line of `histogram`, encoded as inrush writes it.
    fn line(tag: &str, histogram: &Histogram<u64>) -> String {
        let mut raw = Vec::new();
        hdrhistogram::serialization::Serializer::serialize(
            &mut V2DeflateSerializer::new(),
            histogram,
            &mut raw,
        )
        .expect("serialize");
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        format!("Tag={tag},0.000,1.000,0.003,{b64}\n")
    }

    #[test]
    fn a_log_from_before_tag_encoding_reads_its_tags_as_written() {
        let mut h = crate::metrics::recorder::new_histogram();
        h.record(3000).expect("record");
        let path = scratch("old");
        let old = format!(
            "#inrush latency log: values in microseconds\n{}",
            line("a%20b", &h)
        );
        std::fs::write(&path, old).expect("write");
        let entries = read(&path).expect("read");
        assert_eq!(entries[0].tag.as_deref(), Some("a%20b"));
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[test]
    fn a_header_claiming_a_huge_histogram_is_refused_with_its_line() {
        let mut fine = crate::metrics::recorder::new_histogram();
        fine.record(3000).expect("record");
        let mut huge = Histogram::<u64>::new_with_bounds(1, 1 << 62, 5).expect("histogram");
        huge.record(3000).expect("record");
        let path = scratch("huge");
        std::fs::write(&path, format!("{}{}", line("x", &fine), line("x", &huge))).expect("write");
        let e = read(&path).expect_err("refused");
        assert!(e.contains("latency.hlog:2: interval of tag `x`"), "{e}");
        assert!(e.contains("5 significant digits"), "{e}");
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }
}
