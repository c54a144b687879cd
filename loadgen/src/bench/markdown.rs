//! The pure parts of the benchmark runner: reading a Prometheus page, rendering result
//! tables, and putting them into BENCHMARKS.md between its markers.

use super::{Run, Table};

/// Where the generated part of BENCHMARKS.md starts and ends; the rest is hand-written.
pub const BEGIN: &str = "<!-- bench:begin: written by scripts/bench, edits between these markers are overwritten -->";
pub const END: &str = "<!-- bench:end -->";

/// The sum of every sample of `name` (exactly that name: `foo` does not match `foo_total`)
/// whose label set contains each of `labels` (`key="value"`), on a Prometheus text page.
pub fn metric_sum(page: &str, name: &str, labels: &[&str]) -> f64 {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_set) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let wanted = metric == name && labels.iter().all(|l| label_set.split(',').any(|have| have == *l));
            wanted.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// One table with its heading and notes.
pub fn render_table(table: &Table) -> String {
    let mut out = format!("### {}\n\n", table.title);
    for note in &table.notes {
        out.push_str(note);
        out.push_str("\n\n");
    }
    out.push_str(&format!("| {} |\n", table.header.join(" | ")));
    out.push_str(&format!("|{}\n", "---|".repeat(table.header.len())));
    for row in &table.rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out
}

/// The generated section: where and how it was measured, then every table.
pub fn render(run: &Run, tables: &[Table]) -> String {
    let mut out = format!("{BEGIN}\n\n");
    out.push_str(&format!(
        "Measured {} at commit `{}` with `{}` on {}.\n\n",
        run.date, run.commit, run.command, run.machine
    ));
    for table in tables {
        out.push_str(&render_table(table));
        out.push('\n');
    }
    out.push_str(END);
    out
}

/// Why the tables could not be put in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpliceError {
    #[error("BENCHMARKS.md has no `{0}` marker")]
    MissingMarker(&'static str),
}

/// `document` with the text between (and including) its markers replaced by `generated`.
pub fn splice(document: &str, generated: &str) -> Result<String, SpliceError> {
    let start = document.find(BEGIN).ok_or(SpliceError::MissingMarker("bench:begin"))?;
    let end = document[start..].find(END).ok_or(SpliceError::MissingMarker("bench:end"))? + start + END.len();
    Ok(format!("{}{generated}{}", &document[..start], &document[end..]))
}

/// Milliseconds with two decimals.
pub fn ms(value: f64) -> String {
    format!("{value:.2} ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# TYPE bevygap_joins_total counter\n\
        bevygap_joins_total{outcome=\"ready\",code=\"\"} 12\n\
        bevygap_joins_total{outcome=\"failed\",code=\"timeout\"} 3\n\
        bevygap_joins_total_extra 100\n\
        bevygap_joins_waiting 7\n";

    #[test]
    fn metric_sums_match_the_name_exactly_and_every_label() {
        assert_eq!(metric_sum(PAGE, "bevygap_joins_total", &[]), 15.0);
        assert_eq!(metric_sum(PAGE, "bevygap_joins_total", &["outcome=\"ready\""]), 12.0);
        assert_eq!(metric_sum(PAGE, "bevygap_joins_waiting", &[]), 7.0);
        assert_eq!(metric_sum(PAGE, "bevygap_nothing", &[]), 0.0);
    }

    #[test]
    fn the_generated_part_replaces_only_what_is_between_the_markers() {
        let run = Run {
            date: "2026-12-02".into(),
            commit: "abc1234".into(),
            command: "scripts/bench".into(),
            machine: "2 cores".into(),
        };
        let table = Table {
            title: "(a) Fleet".into(),
            notes: vec!["A note.".into()],
            header: vec!["load".into(), "joins/s".into()],
            rows: vec![vec!["closed".into(), "100".into()]],
        };
        let generated = render(&run, &[table]);
        assert!(generated.contains("| load | joins/s |\n|---|---|\n| closed | 100 |\n"));
        assert!(generated.contains("at commit `abc1234`"));
        let document = format!("# Benchmarks\n\nHand-written.\n\n{BEGIN}\nold\n{END}\n\n## More\n");
        let spliced = splice(&document, &generated).expect("markers present");
        assert!(spliced.starts_with("# Benchmarks\n\nHand-written.\n\n"));
        assert!(spliced.ends_with("\n\n## More\n"));
        assert!(!spliced.contains("old"));
        assert_eq!(splice(&spliced, &generated).as_deref(), Ok(spliced.as_str()), "rewriting is stable");
        assert_eq!(splice("no markers", &generated), Err(SpliceError::MissingMarker("bench:begin")));
    }
}
