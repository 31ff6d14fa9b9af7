//! `index.html`: a real run's page parsed back as HTML (self-contained, every chart inline, the
//! summary's numbers), and hostile summary text escaped.

mod common;

use std::collections::BTreeMap;

use common::html::{
    assert_self_contained, attr, name_of, outside_links, parse, section, tags, text, unescape,
};
use common::{run_quiet, Scenario, Scratch};
use inrush::report::html;
use inrush::report::summary::Summary;

/// About 3 s against the built-in messenger: two phases, a few messages, two thresholds. The
/// description carries markup that must come out as text.
fn scenario() -> Scenario {
    Scenario::new("html-report", 7)
        .description("Checks the <b>HTML</b> report & its \"escaping\"")
        .timeout("5s")
        .drain("500ms")
        .with(
            r#"
[load]
arrivals = "uniform"
phases = [
  { name = "warm", duration = "1s", rate = 10 },
  { name = "peak", duration = "2s", rate = 20 },
]
[user]
contacts_known = 3
contacts_unknown = 1
messages = 2
think = { constant = "100ms" }
stay_online = { constant = "30s" }
[thresholds]
"register.p99" = "< 5s"
"messages.lost" = "== 0"
"#,
        )
}

#[test]
fn index_html_embeds_every_chart_and_the_summary() {
    let scratch = Scratch::new();
    let out = scratch.out("run");
    run_quiet(scratch.scenario("html", scenario()), out.clone(), None);
    let summary: Summary =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for file in ["distribution.png", "distribution.svg", "index.html"] {
        assert!(out.join(file).is_file(), "{file} not written");
    }

    let page = std::fs::read_to_string(out.join("index.html")).expect("index.html");
    let dom = parse(&page);
    assert!(page.starts_with("<!DOCTYPE html>"));

    // Five charts, each an inline SVG inside its figure, each opening its own file full size:
    // the page's only links leave it for the charts' files beside it.
    let figures: Vec<_> = tags(&dom)
        .filter(|t| name_of(t) == "figure")
        .map(|t| t.inner_html(dom.parser()))
        .collect();
    assert_eq!(figures.len(), 5, "one figure per chart");
    let mut charts_linked = Vec::new();
    for f in &figures {
        let figure = parse(f);
        let zoom = tags(&figure)
            .find(|t| attr(t, "class").as_deref() == Some("zoom"))
            .expect("the chart is wrapped in a link");
        let href = attr(zoom, "href").expect("href");
        assert!(
            zoom.inner_html(figure.parser()).contains("<svg"),
            "{href}: the link does not hold the inline chart"
        );
        let stem = href.strip_suffix(".png").expect("links the PNG");
        charts_linked.push(format!("{stem}.svg"));
        charts_linked.push(href);
    }
    let mut links = outside_links(&page, &dom);
    links.sort();
    links.dedup();
    charts_linked.sort();
    assert_eq!(
        links, charts_linked,
        "PNG and SVG of each chart, nothing else"
    );
    for link in &links {
        assert!(
            !link.contains('/') && out.join(link).is_file(),
            "{link} is not a chart beside the page"
        );
    }
    assert_eq!(tags(&dom).filter(|t| name_of(t) == "svg").count(), 5);
    let charts = section(&dom, "charts");
    for caption in [
        "Latency percentiles over time",
        "Latency distribution",
        "Throughput",
        "Users",
        "Generator health",
    ] {
        assert!(charts.contains(caption), "no chart titled {caption}");
    }
    // The axis reaches as far as the operations' samples resolve (a few hundred: 99%); the
    // generator's lags, with more samples, are no longer among them.
    assert!(
        charts.contains("90%") && charts.contains("99%"),
        "distribution chart's percentile axis"
    );

    // The verdict, colour-coded by class.
    let verdict = format!("{:?}", summary.verdict).to_lowercase();
    let badge = tags(&dom)
        .find(|t| attr(t, "class").as_deref() == Some("badge"))
        .expect("verdict badge");
    assert_eq!(text(badge, &dom), verdict);
    assert!(page.contains(&format!("verdict-{verdict}")));

    // Metadata, escaped on the way in and readable on the way out.
    let h1 = tags(&dom).find(|t| name_of(t) == "h1").expect("h1");
    assert_eq!(text(h1, &dom), summary.scenario);
    let description = tags(&dom)
        .find(|t| attr(t, "class").as_deref() == Some("description"))
        .expect("description");
    assert_eq!(text(description, &dom), summary.description);
    let run = section(&dom, "run");
    for value in [
        summary.seed.to_string(),
        summary.inrush_version.clone(),
        summary.generator.host.hostname.clone(),
    ] {
        assert!(run.contains(&value), "run metadata lacks {value}");
    }

    // The metrics table: a row per metric that ran, with summary.json's numbers.
    let metrics_html = section(&dom, "metrics");
    let metrics = parse(&metrics_html);
    let rows: BTreeMap<String, Vec<(Option<String>, String)>> = tags(&metrics)
        .filter(|t| name_of(t) == "tr")
        .filter_map(|tr| {
            let name = attr(tr, "data-metric")?;
            let cells = tr
                .children()
                .top()
                .iter()
                .filter_map(|h| h.get(metrics.parser()).and_then(tl::Node::as_tag))
                .filter(|t| name_of(t) == "td")
                .map(|td| (attr(td, "data-value"), text(td, &metrics)))
                .collect();
            Some((name, cells))
        })
        .collect();
    let ran: Vec<&String> = summary
        .metrics
        .iter()
        .filter(|(_, m)| m.count > 0)
        .map(|(k, _)| k)
        .collect();
    assert!(ran.len() >= 5, "the run measured its steps: {ran:?}");
    for name in ran {
        let m = &summary.metrics[name];
        let cells = rows
            .get(name)
            .unwrap_or_else(|| panic!("no row for {name}"));
        assert_eq!(cells[0].1, *name);
        // Count: shown with separators, exact in data-value.
        assert_eq!(cells[1].0.as_deref(), Some(m.count.to_string().as_str()));
        assert_eq!(cells[1].1.replace(',', ""), m.count.to_string(), "{name}");
        assert_eq!(cells[2].1.replace(',', ""), m.errors.to_string(), "{name}");
        let lat = m.latency_ms.expect("latency");
        // Columns: name, count, errors, rate, min, mean, p50, p90, p95, p99, p99.9, p99.99, max.
        for (column, stat, value) in [
            (8, "p95", lat.p95),
            (9, "p99", lat.p99),
            (11, "p99.99", lat.p9999),
        ] {
            let exact: f64 = cells[column].0.as_deref().unwrap().parse().unwrap();
            assert_eq!(exact, value, "{name} {stat}");
            let shown: f64 = cells[column].1.replace(',', "").parse().unwrap();
            assert!(
                (shown - value).abs() <= value * 0.01 + 0.001,
                "{name} {stat}"
            );
        }
        assert!(
            lat.p90 <= lat.p95
                && lat.p95 <= lat.p99
                && lat.p999 <= lat.p9999
                && lat.p9999 <= lat.max
        );
    }
    assert_eq!(
        rows["register"][1].1.replace(',', ""),
        summary.metrics["register"].count.to_string()
    );

    // Every threshold with its result.
    let thresholds = section(&dom, "thresholds");
    assert_eq!(summary.thresholds.len(), 2);
    for t in &summary.thresholds {
        assert!(
            unescape(&thresholds).contains(&t.expr),
            "threshold {} missing",
            t.expr
        );
    }
    assert_eq!(
        thresholds.matches("pill-pass").count(),
        summary.thresholds.iter().filter(|t| t.passed).count()
    );

    // A section per phase, and the message and arrival counts.
    let phases = section(&dom, "phases");
    for name in summary.phases.keys() {
        assert!(
            phases.contains(&format!("data-phase=\"{name}\"")),
            "phase {name}"
        );
    }
    let flow = section(&dom, "flow");
    for n in [summary.messages.sent, summary.arrivals.planned] {
        assert!(
            flow.contains(&format!("data-value=\"{n}\"")),
            "{n} in {flow}"
        );
    }

    // `inrush report` rebuilds the same page from the saved files.
    std::fs::remove_file(out.join("index.html")).unwrap();
    std::fs::remove_file(out.join("distribution.svg")).unwrap();
    inrush::report(&out, &[], false).expect("report");
    let rebuilt = std::fs::read_to_string(out.join("index.html")).expect("rebuilt index.html");
    assert!(rebuilt == page, "index.html differs after `inrush report`");
}

const HOSTILE: &str = "<script>alert(1)</script> & \"x\" 'y'";

#[test]
fn hostile_summary_text_is_escaped() {
    let mut s: Summary =
        serde_json::from_str(include_str!("fixtures/summary.json")).expect("fixture");
    s.description = HOSTILE.to_string();
    s.scenario = "<img src=x onerror=alert(1)>".to_string();
    s.target = format!("{HOSTILE} target");
    s.aborted = Some(format!("{HOSTILE} aborted"));
    s.warnings = vec![format!("{HOSTILE} warning")];
    s.thresholds[0].expr = format!("{HOSTILE} expr");
    s.generator.host.cpu_model = format!("{HOSTILE} cpu");
    let verify = s.metrics.get_mut("verify").unwrap();
    verify
        .error_examples
        .insert("http_5xx".into(), format!("{HOSTILE} example"));
    let metric = s.metrics.shift_remove("register").unwrap();
    s.metrics.insert(format!("{HOSTILE} metric"), metric);
    let phase = s.phases.shift_remove("surge").unwrap();
    s.phases.insert(format!("{HOSTILE} phase"), phase);
    let charts = [html::EmbeddedChart {
        title: "<b>chart</b>",
        svg: "<?xml version=\"1.0\"?>\n<svg width=\"10\" height=\"10\" viewBox=\"0 0 10 10\" xmlns=\"http://www.w3.org/2000/svg\"><rect width=\"10\" height=\"10\"/></svg>\n".to_string(),
        stem: None,
    }];

    let page = html::render(&s, &charts);
    let dom = parse(&page);
    assert_self_contained(&page, &dom);
    assert!(!page.contains("<script"), "unescaped script tag");
    assert!(!page.contains("<img"), "unescaped img tag");
    assert!(!page.contains("<b>"), "unescaped markup");
    assert!(!page.contains("<?xml"), "XML prolog left in the page");

    let description = tags(&dom)
        .find(|t| attr(t, "class").as_deref() == Some("description"))
        .expect("description");
    assert_eq!(text(description, &dom), HOSTILE);
    let h1 = tags(&dom).find(|t| name_of(t) == "h1").expect("h1");
    assert_eq!(text(h1, &dom), s.scenario);
    let title = tags(&dom).find(|t| name_of(t) == "title").expect("title");
    assert!(text(title, &dom).starts_with(&s.scenario));
    let aborted = section(&dom, "aborted");
    assert!(unescape(&aborted).contains(&format!("{HOSTILE} aborted")));
    let warnings = section(&dom, "warnings");
    assert!(unescape(&warnings).contains(&format!("{HOSTILE} warning")));
    let metrics = section(&dom, "metrics");
    assert!(unescape(&metrics).contains(&format!("{HOSTILE} example")));
    assert!(unescape(&metrics).contains(&format!("{HOSTILE} metric")));
    let thresholds = section(&dom, "thresholds");
    assert!(unescape(&thresholds).contains(&format!("{HOSTILE} expr")));
    assert_eq!(thresholds.matches("pill-fail").count(), 1);
    // The chart came through, inline and scalable.
    assert_eq!(tags(&dom).filter(|t| name_of(t) == "svg").count(), 1);
    let svg = tags(&dom).find(|t| name_of(t) == "svg").unwrap();
    assert_eq!(attr(svg, "viewBox").as_deref(), Some("0 0 10 10"));
    assert_eq!(attr(svg, "width"), None);
}

/// The rules of the page's stylesheet under its narrow-screen media query (`max-width` of at
/// least a 390 px phone), and that width.
fn narrow_rules(page: &str) -> (u32, String) {
    let at = page
        .find("@media (max-width: ")
        .expect("a media query for narrow screens");
    let rest = &page[at + "@media (max-width: ".len()..];
    let px: u32 = rest[..rest.find("px").expect("px")]
        .parse()
        .expect("a width in px");
    // The block ends at the first closing brace at depth zero.
    let body = &rest[rest.find('{').expect("block") + 1..];
    let mut depth = 0;
    let end = body
        .char_indices()
        .find(|&(_, c)| {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => return true,
                '}' => depth -= 1,
                _ => {}
            }
            false
        })
        .map(|(i, _)| i)
        .expect("closed block");
    (px, body[..end].to_string())
}

#[test]
fn a_phone_sees_name_p50_p95_p99_and_charts_that_open_full_size() {
    let s: Summary = serde_json::from_str(include_str!("fixtures/summary.json")).expect("fixture");
    let svg = "<svg viewBox=\"0 0 10 10\"><rect/></svg>".to_string();
    let charts = [html::EmbeddedChart {
        title: "Latency percentiles over time",
        svg,
        stem: Some("latency"),
    }];
    let page = html::render(&s, &charts);
    let dom = parse(&page);

    let (px, rules) = narrow_rules(&page);
    assert!(
        px >= 390,
        "the media query starts below a phone's width: {px}"
    );
    assert!(
        rules.contains("table.metrics .wide { display: none; }"),
        "the wide columns stay on a phone: {rules}"
    );
    // What stays: the columns without `wide`, in the head and in every metric row.
    let narrow =
        |t: &tl::HTMLTag| !attr(t, "class").is_some_and(|c| c.split(' ').any(|k| k == "wide"));
    let metrics_html = section(&dom, "metrics");
    let metrics = parse(&metrics_html);
    let head: Vec<String> = tags(&metrics)
        .filter(|t| name_of(t) == "th" && narrow(t))
        .map(|t| text(t, &metrics))
        .collect();
    assert_eq!(head, ["Operation", "p50", "p95", "p99"]);
    let mut rows = 0;
    for tr in tags(&metrics).filter(|t| attr(t, "data-metric").is_some()) {
        let name = attr(tr, "data-metric").unwrap();
        let cells: Vec<(Option<String>, String)> = common::html::children(tr, &metrics)
            .into_iter()
            .filter(|td| narrow(td))
            .map(|td| (attr(td, "data-value"), text(td, &metrics)))
            .collect();
        let l = s.metrics[&name].latency_ms.expect("latency");
        let values: Vec<Option<f64>> = cells[1..]
            .iter()
            .map(|(v, _)| v.as_deref().map(|v| v.parse().expect("number")))
            .collect();
        assert_eq!(cells[0].1, name);
        assert_eq!(values, [Some(l.p50), Some(l.p95), Some(l.p99)], "{name}");
        rows += 1;
    }
    assert_eq!(rows, s.metrics.len());

    // The chart is a link to its full-size file; the caption links both formats.
    let zoom = tags(&dom)
        .find(|t| attr(t, "class").as_deref() == Some("zoom"))
        .expect("the chart is wrapped in a link");
    assert_eq!(attr(zoom, "href").as_deref(), Some("latency.png"));
    assert_eq!(
        outside_links(&page, &dom),
        ["latency.png", "latency.svg", "latency.png"]
    );
    assert!(rules.contains(".narrow-only { display: block; }"));
    assert!(unescape(&section(&dom, "charts")).contains("Tap a chart to open it full size"));
}
