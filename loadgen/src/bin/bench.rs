//! `bevygap-bench`: runs the standard benchmark scenarios and rewrites the generated part of
//! BENCHMARKS.md. `scripts/bench` builds the release binaries and runs it.
//!
//! ```text
//! bevygap-bench [--bins DIR] [--only abcdefg] [--smoke] [--write BENCHMARKS.md] [--command TEXT]
//! ```
//!
//! `--bins`: where `bevygap-matchmaker`, `bevygap-demo-server` and `fake-edgegap` are (default:
//! this binary's directory). `--smoke`: a few joins per scenario, to prove they run. Without
//! `--write` the tables are printed only. Exits 1 when a scenario fails (nothing is written), 2
//! on bad arguments.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use bevygap_loadgen::bench::markdown::{render, render_table, splice};
use bevygap_loadgen::bench::procs::Binaries;
use bevygap_loadgen::bench::{Options, Run, SCENARIOS, Scale, run_scenario};

struct Args {
    bins: PathBuf,
    only: Vec<char>,
    scale: Scale,
    write: Option<PathBuf>,
    command: String,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let here = std::env::current_exe().ok().and_then(|p| p.parent().map(PathBuf::from)).unwrap_or_default();
    let mut parsed =
        Args { bins: here, only: SCENARIOS.to_vec(), scale: Scale::Full, write: None, command: "scripts/bench".into() };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--bins" => parsed.bins = PathBuf::from(value()?),
            "--only" => {
                let only: Vec<char> = value()?.chars().collect();
                if let Some(bad) = only.iter().find(|c| !SCENARIOS.contains(c)) {
                    return Err(format!("--only: unknown scenario {bad:?} (a to g)"));
                }
                parsed.only = only;
            }
            "--smoke" => parsed.scale = Scale::Smoke,
            "--write" => parsed.write = Some(PathBuf::from(value()?)),
            "--command" => parsed.command = value()?.trim().to_string(),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(parsed)
}

/// Output of a command, trimmed; empty when it cannot run.
fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The machine in one line: CPU model, cores, memory, kernel.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model =
        cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).map(|m| m.trim_start_matches([' ', '\t', ':']));
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{} ({cores} cores), {:.0} GiB, Linux {}, load generator on the same machine",
        model.unwrap_or("unknown CPU"),
        mem_kib as f64 / 1024.0 / 1024.0,
        output("uname", &["-r"])
    )
}

fn commit() -> String {
    let head = output("git", &["rev-parse", "--short", "HEAD"]);
    let dirty = !output("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty();
    if dirty { format!("{head} + uncommitted changes") } else { head }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&args) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("bevygap-bench: {e} (see the file's docs for usage)");
            return ExitCode::from(2);
        }
    };
    let work_dir = std::env::temp_dir().join(format!("bevygap-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&work_dir) {
        eprintln!("bevygap-bench: cannot create {}: {e}", work_dir.display());
        return ExitCode::from(2);
    }
    let options = Options { bins: Binaries(args.bins.clone()), scale: args.scale, work_dir: work_dir.clone() };
    let run = Run {
        date: output("date", &["-u", "+%Y-%m-%d"]),
        commit: commit(),
        command: args.command.clone(),
        machine: machine(),
    };
    let mut tables = Vec::new();
    let mut failed = false;
    for id in &args.only {
        eprintln!("bevygap-bench: scenario ({id})…");
        match run_scenario(*id, &options) {
            Ok(table) => {
                println!("{}", render_table(&table));
                tables.push(table);
            }
            Err(e) => {
                eprintln!("bevygap-bench: scenario ({id}) failed: {e}");
                failed = true;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work_dir);
    if failed {
        return ExitCode::from(1);
    }
    if let Some(path) = args.write {
        let written = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|doc| splice(&doc, &render(&run, &tables)).map_err(|e| e.to_string()))
            .and_then(|doc| std::fs::write(&path, doc).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("bevygap-bench: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
        eprintln!("bevygap-bench: wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
