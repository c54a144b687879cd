//! The benchmark runner on a smoke load (`--smoke`: a few joins per scenario) against the debug
//! binaries: every scenario but callgrind starts its processes, every join it sends is
//! answered, its table is printed, and `--write` puts the tables between BENCHMARKS.md's
//! markers and nowhere else. No timing is asserted.

use std::process::Command;

use bevygap_loadgen::bench::markdown::{BEGIN, END};

#[test]
fn every_scenario_runs_on_a_smoke_load_and_the_tables_land_between_the_markers() {
    let matchmaker = bevygap_testkit::workspace_binary("bevygap_matchmaker", "bevygap-matchmaker");
    bevygap_testkit::workspace_binary("bevygap_demo", "bevygap-demo-server");
    bevygap_testkit::workspace_binary("fake_edgegap", "fake-edgegap");
    let bins = matchmaker.parent().expect("the binaries' directory").to_path_buf();
    let doc = std::env::temp_dir().join(format!("bevygap-bench-smoke-{}.md", std::process::id()));
    std::fs::write(&doc, format!("# Benchmarks\n\nBy hand.\n\n{BEGIN}\nstale\n{END}\n\n## After\n")).expect("temp doc");

    let out = Command::new(env!("CARGO_BIN_EXE_bevygap-bench"))
        .args(["--smoke", "--only", "abcdef", "--command", "smoke test"])
        .arg("--bins")
        .arg(&bins)
        .arg("--write")
        .arg(&doc)
        .output()
        .expect("bevygap-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bevygap-bench failed:\n{stderr}\n{stdout}");

    for title in ["(a) Fleet", "(b) Edgegap", "(c) End to end", "(d) Many players", "(e) Idle", "(f) Replicas"] {
        assert!(stdout.contains(title), "no table {title:?}:\n{stdout}");
    }
    // Every join of the smoke loads was answered ready (sent / ready counts).
    for ready in ["| 40 / 40 |", "| 20 / 20 |", "| 50 / 50 |"] {
        assert!(stdout.contains(ready), "no {ready:?} row:\n{stdout}");
    }
    assert!(stdout.contains("| 1 | 20 / 20 |") && stdout.contains("| 2 | 20 / 20 |"), "replica rows:\n{stdout}");
    assert!(stdout.contains("| warm (already running) | 2 |"), "end-to-end rows:\n{stdout}");

    let written = std::fs::read_to_string(&doc).expect("the doc");
    let _ = std::fs::remove_file(&doc);
    assert!(written.starts_with("# Benchmarks\n\nBy hand.\n\n"), "{written}");
    assert!(written.ends_with("\n\n## After\n"), "{written}");
    assert!(!written.contains("stale"));
    assert!(written.contains("with `smoke test` on "), "{written}");
    assert!(written.contains("### (f) Replicas"), "{written}");
}
