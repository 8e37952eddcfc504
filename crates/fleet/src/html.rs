//! `fleet report --html`: one self-contained page about the fleet.
//!
//! The page carries its own styles and draws with plain HTML and inline
//! SVG, so it opens from a file, a mail attachment or an air-gapped
//! console without fetching anything. Every number a chart shows is also
//! in the page as text (`data-*` attributes and table cells), so that it
//! can be read back and checked.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use cpumodel_map::{Database, FeatureSet};
use cpumodel_xml::escape;

use crate::plan::{format_time, CoverageDocument, DriftDocument};
use crate::profile::ProfileCount;

/// The hosts of one group, as their distinct CPUs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupProfiles {
    /// The group's name (`all hosts` when the fleet has no groups).
    pub group: String,
    /// Its hosts' current profiles.
    pub profiles: Vec<ProfileCount>,
}

/// How many CPU rows the heatmap shows per group.
const HEATMAP_ROWS: usize = 40;

/// The features some hosts have and others lack: the heatmap's columns
/// (features every host has, or none, say nothing about the fleet).
fn varying_features(groups: &[GroupProfiles]) -> FeatureSet {
    let mut any = FeatureSet::EMPTY;
    let mut all: Option<FeatureSet> = None;
    for p in groups.iter().flat_map(|g| &g.profiles) {
        any = any.union(&p.profile.features);
        all = Some(match all {
            None => p.profile.features,
            Some(a) => a.intersection(&p.profile.features),
        });
    }
    any.difference(&all.unwrap_or_default())
}

/// Renders the page: model coverage as bars, a CPU × feature heatmap by
/// group, and drift over time.
pub fn report_page(
    db: &Database,
    title: &str,
    coverage: &CoverageDocument,
    groups: &[GroupProfiles],
    drift: &DriftDocument,
) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n<p id=\"summary\" data-hosts=\"{}\">{} hosts</p>\n",
        escape(title),
        escape(title),
        coverage.hosts,
        coverage.hosts
    );
    coverage_section(&mut out, coverage);
    heatmap_section(&mut out, db, groups);
    drift_section(&mut out, drift);
    out.push_str("</body>\n</html>\n");
    out
}

const STYLE: &str =
    "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;background:#fff}\
table{border-collapse:collapse}td,th{padding:2px 6px;text-align:left;white-space:nowrap}\
.bar{height:14px;background:#2f6fb3}.track{width:400px;background:#e4e9f0}\
.heat td.cell{width:14px;height:14px;padding:0;border:1px solid #fff}\
.heat th.feature{writing-mode:vertical-rl;font-weight:normal;font-size:11px}\
h2{margin-top:2em}";

fn coverage_section(out: &mut String, coverage: &CoverageDocument) {
    out.push_str("<h2>Model coverage</h2>\n<table id=\"coverage\">\n<tr><th>Model</th><th>Hosts</th><th></th><th>Blocked by</th></tr>\n");
    // Most hosts first, newest first among equals; the models no host can
    // run are counted, not drawn.
    let mut runnable: Vec<_> = coverage.models.iter().filter(|m| m.hosts > 0).collect();
    runnable.sort_by_key(|m| std::cmp::Reverse(m.hosts));
    for m in runnable {
        let share = if coverage.hosts == 0 {
            0.0
        } else {
            // cast: host counts are far below 2^52, where f64 stays exact.
            #[allow(clippy::cast_precision_loss)]
            let s = m.hosts as f64 * 100.0 / coverage.hosts as f64;
            s
        };
        let blockers: Vec<String> = m
            .blockers
            .iter()
            .map(|b| format!("{} ({})", b.feature, b.hosts))
            .collect();
        let _ = writeln!(
            out,
            "<tr class=\"model\" data-model=\"{}\" data-hosts=\"{}\"><td>{}</td><td class=\"hosts\">{}</td><td><div class=\"track\"><div class=\"bar\" style=\"width:{share:.1}%\"></div></div></td><td>{}</td></tr>",
            escape(&m.model),
            m.hosts,
            escape(&m.model),
            m.hosts,
            escape(&blockers.join(", "))
        );
    }
    out.push_str("</table>\n");
    let none: Vec<&str> = coverage
        .models
        .iter()
        .filter(|m| m.hosts == 0)
        .map(|m| m.model.as_str())
        .collect();
    let _ = writeln!(
        out,
        "<details id=\"unusable\" data-models=\"{}\"><summary>{} models no host can run</summary><p>{}</p></details>",
        none.len(),
        none.len(),
        escape(&none.join(", "))
    );
}

/// A cell's colour for a share in [0, 1]: white to dark blue.
fn heat_colour(have: u64, total: u64) -> String {
    let share = (have * 255).checked_div(total).unwrap_or(0);
    let c = 255 - share.min(255);
    format!("rgb({},{},{})", c * 3 / 4, c * 7 / 8, 255 - share / 4)
}

fn heatmap_section(out: &mut String, db: &Database, groups: &[GroupProfiles]) {
    let columns: Vec<_> = varying_features(groups).iter().collect();
    out.push_str("<h2>CPUs and features by group</h2>\n");
    if columns.is_empty() {
        out.push_str("<p id=\"uniform\">Every host has the same features.</p>\n");
        return;
    }
    out.push_str(
        "<table class=\"heat\" id=\"heatmap\">\n<tr><th>Group</th><th>CPU</th><th>Hosts</th>",
    );
    for f in &columns {
        let _ = write!(
            out,
            "<th class=\"feature\">{}</th>",
            escape(db.feature_name(*f))
        );
    }
    out.push_str("</tr>\n");
    for g in groups {
        let mut rows: Vec<&ProfileCount> = g.profiles.iter().collect();
        rows.sort_by_key(|p| std::cmp::Reverse(p.hosts));
        let shown = rows.len().min(HEATMAP_ROWS);
        let group_hosts: u64 = g.profiles.iter().map(|p| p.hosts).sum();
        for p in &rows[..shown] {
            let _ = write!(
                out,
                "<tr data-group=\"{}\" data-hosts=\"{}\"><td>{}</td><td>{}</td><td>{}</td>",
                escape(&g.group),
                p.hosts,
                escape(&g.group),
                escape(p.profile.model_name(db)),
                p.hosts
            );
            for f in &columns {
                let has = p.profile.features.contains(*f);
                let _ = write!(
                    out,
                    "<td class=\"cell\" data-has=\"{}\" style=\"background:{}\" title=\"{}\"></td>",
                    u8::from(has),
                    heat_colour(u64::from(has), 1),
                    escape(db.feature_name(*f))
                );
            }
            out.push_str("</tr>\n");
        }
        // The group's share of hosts with each feature.
        let _ = write!(
            out,
            "<tr class=\"share\" data-group=\"{}\" data-hosts=\"{group_hosts}\"><td>{}</td><td>share</td><td>{group_hosts}</td>",
            escape(&g.group),
            escape(&g.group)
        );
        for f in &columns {
            let have: u64 = g
                .profiles
                .iter()
                .filter(|p| p.profile.features.contains(*f))
                .map(|p| p.hosts)
                .sum();
            let _ = write!(
                out,
                "<td class=\"cell\" data-have=\"{have}\" style=\"background:{}\" title=\"{}: {have}/{group_hosts}\"></td>",
                heat_colour(have, group_hosts),
                escape(db.feature_name(*f))
            );
        }
        out.push_str("</tr>\n");
        if rows.len() > shown {
            let _ = writeln!(
                out,
                "<tr><td colspan=\"3\">{} more CPUs in {}</td></tr>",
                rows.len() - shown,
                escape(&g.group)
            );
        }
    }
    out.push_str("</table>\n");
}

fn drift_section(out: &mut String, drift: &DriftDocument) {
    out.push_str("<h2>Drift</h2>\n");
    let _ = writeln!(
        out,
        "<p id=\"drift-count\" data-hosts=\"{}\">{} hosts changed since their previous report</p>",
        drift.hosts.len(),
        drift.hosts.len()
    );
    // Changes per day of the newest report, as bars.
    let mut days: BTreeMap<String, u64> = BTreeMap::new();
    for h in &drift.hosts {
        let day = format_time(h.current_us)
            .chars()
            .take(10)
            .collect::<String>();
        *days.entry(day).or_default() += 1;
    }
    if !days.is_empty() {
        let max = days.values().copied().max().unwrap_or(1);
        let width = 40 * days.len();
        let _ = writeln!(
            out,
            "<svg id=\"drift-days\" width=\"{width}\" height=\"140\" viewBox=\"0 0 {width} 140\" role=\"img\">"
        );
        for (i, (day, n)) in days.iter().enumerate() {
            let h = n * 100 / max;
            let _ = writeln!(
                out,
                "<g data-day=\"{day}\" data-hosts=\"{n}\"><rect x=\"{}\" y=\"{}\" width=\"30\" height=\"{h}\" fill=\"#c0392b\"></rect><text x=\"{}\" y=\"135\" font-size=\"9\">{}</text></g>",
                i * 40 + 5,
                110 - h,
                i * 40 + 2,
                &day[5..]
            );
        }
        out.push_str("</svg>\n");
    }
    out.push_str("<table id=\"drift\">\n<tr><th>Host</th><th>When</th><th>Gained</th><th>Lost</th><th>Models lost</th><th>Guests broken</th></tr>\n");
    for h in &drift.hosts {
        let _ = writeln!(
            out,
            "<tr data-host=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&h.host),
            escape(&h.host),
            format_time(h.current_us),
            escape(&h.gained.join(", ")),
            escape(&h.lost.join(", ")),
            escape(&h.models_lost.join(", ")),
            escape(&h.guests_broken.join(", "))
        );
    }
    out.push_str("</table>\n");
}
