//! bench-compare: runs C workloads and real programs under pattern-alloc and
//! its peers through LD_PRELOAD, interleaved, and reports medians, ratios and
//! plots. See BENCHMARKS.md for what it measures and how to run it;
//! `ci/bench-compare.sh` prepares the directory it runs from.
//!
//!   bench-compare run --dir DIR [--out OUT] [--threads 1,2,4] [--runs 3] [--scale 1]
//!                     [--budget-seconds S] [--timeout S] [--label NAME] [--smoke]
//!                     [--workloads a,b] [--allocators a,b]
//!       (threads by default: 1, 2, powers of two below the core count, the core count)
//!   bench-compare report [--out OUT] [--update BENCHMARKS.md] RESULTS_DIR...

mod allocators;
mod exec;
mod report;
mod results;
mod svg;
mod workloads;

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use allocators::Allocator;
use results::{LatencyPoint, Results, Sample};
use workloads::Workload;

const USAGE: &str = "usage:
  bench-compare run --dir DIR [--out OUT] [--threads 1,2,4] [--runs N] [--scale F]
                    [--budget-seconds S] [--timeout S] [--label NAME] [--smoke]
                    [--workloads a,b] [--allocators a,b]
  bench-compare report [--out OUT] [--update FILE.md] RESULTS_DIR...";

struct RunOptions {
    dir: PathBuf,
    out: PathBuf,
    threads: Vec<u32>,
    runs: u32,
    scale: f64,
    budget: Option<f64>,
    timeout: Duration,
    label: Option<String>,
    smoke: bool,
    workloads: Option<Vec<String>>,
    allocators: Option<Vec<String>>,
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("bench-compare: {msg}");
    std::process::exit(2)
}

fn list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// 1, 2, then powers of two up to the core count, and the core count itself.
fn default_threads() -> Vec<u32> {
    let cores = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
    let mut t = vec![1, 2];
    let mut n = 4;
    while n < cores {
        t.push(n);
        n *= 2;
    }
    if cores > 2 {
        t.push(cores);
    }
    t
}

fn parse_run(args: &[String]) -> RunOptions {
    let mut o = RunOptions {
        dir: PathBuf::new(),
        out: PathBuf::from("bench-results"),
        threads: default_threads(),
        runs: 3,
        scale: 1.0,
        budget: None,
        timeout: Duration::from_secs(300),
        label: None,
        smoke: false,
        workloads: None,
        allocators: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_else(|| fail(format!("{flag} needs a value\n{USAGE}")));
        match flag.as_str() {
            "--dir" => o.dir = PathBuf::from(value()),
            "--out" => o.out = PathBuf::from(value()),
            "--threads" => {
                o.threads = list(&value())
                    .iter()
                    .map(|t| t.parse().unwrap_or_else(|_| fail(format!("bad thread count {t}"))))
                    .collect();
                if o.threads.is_empty() || o.threads.contains(&0) {
                    fail("--threads needs counts of at least 1");
                }
            }
            "--runs" => o.runs = value().parse().unwrap_or_else(|_| fail("bad --runs")),
            "--scale" => o.scale = value().parse().unwrap_or_else(|_| fail("bad --scale")),
            "--budget-seconds" => o.budget = Some(value().parse().unwrap_or_else(|_| fail("bad --budget-seconds"))),
            "--timeout" => o.timeout = Duration::from_secs(value().parse().unwrap_or_else(|_| fail("bad --timeout"))),
            "--label" => o.label = Some(value()),
            "--workloads" => o.workloads = Some(list(&value())),
            "--allocators" => o.allocators = Some(list(&value())),
            "--smoke" => o.smoke = true,
            other => fail(format!("unknown option {other}\n{USAGE}")),
        }
    }
    if o.dir.as_os_str().is_empty() {
        fail(format!("run needs --dir (a directory made by ci/bench-compare.sh --prepare)\n{USAGE}"));
    }
    if o.smoke {
        o.runs = 1;
        o.scale = o.scale.min(0.1);
        o.timeout = o.timeout.min(Duration::from_secs(60));
    }
    o.runs = o.runs.max(1);
    for name in o.workloads.iter().flatten() {
        if workloads::by_name(name).is_none() {
            fail(format!("unknown workload {name}"));
        }
    }
    for name in o.allocators.iter().flatten() {
        if allocators::by_name(name).is_none() {
            fail(format!("unknown allocator {name}"));
        }
    }
    o
}

/// Checks that an allocator loads and runs a tiny workload; Err says why not.
fn probe(dir: &Path, allocator: &Allocator, scratch: &Path) -> Result<Option<PathBuf>, String> {
    let preload = allocator.preload(dir)?;
    let program = dir.join("workloads").join("churn");
    let copy = workloads::Invocation { program, args: vec!["2".into(), "0.001".into()], stdin: None };
    let m = exec::measure(&[copy], allocator, preload.as_deref(), scratch, Duration::from_secs(30), false);
    if m.status == "ok" {
        Ok(preload)
    } else {
        Err(format!("does not run here ({})", m.status))
    }
}

fn run(o: RunOptions) {
    let started = Instant::now();
    std::fs::create_dir_all(&o.out).unwrap_or_else(|e| fail(format!("{}: {e}", o.out.display())));
    let scratch = o.out.join("scratch");
    std::fs::create_dir_all(&scratch).unwrap_or_else(|e| fail(format!("{}: {e}", scratch.display())));
    let mut machine = results::this_machine(o.label.as_deref());
    let label = machine.get("label").to_string();
    let mut notes: Vec<String> = Vec::new();
    let note = |line: String, notes: &mut Vec<String>| {
        println!("note: {line}");
        notes.push(line);
    };

    let mut allocators: Vec<(&Allocator, Option<PathBuf>)> = Vec::new();
    for a in allocators::ALL.iter() {
        if let Some(only) = &o.allocators {
            if !only.iter().any(|n| n == a.name) {
                continue;
            }
        }
        match probe(&o.dir, a, &scratch) {
            Ok(preload) => allocators.push((a, preload)),
            Err(why) => note(format!("allocator {} missing: {why}", a.name), &mut notes),
        }
    }
    if allocators.is_empty() {
        fail("no allocator runs here");
    }
    let mut chosen: Vec<&Workload> = Vec::new();
    for w in workloads::ALL.iter() {
        if let Some(only) = &o.workloads {
            if !only.iter().any(|n| n == w.name) {
                continue;
            }
        }
        match w.invocations(&o.dir, 1, o.scale) {
            Ok(_) => chosen.push(w),
            Err(why) => note(format!("workload {} skipped: {why}", w.name), &mut notes),
        }
    }
    let names: Vec<&str> = allocators.iter().map(|(a, _)| a.name).collect();
    println!(
        "bench-compare: {} on {}, {} cores, load {}; allocators: {}; workloads: {}; threads {:?}; {} runs; scale {}",
        label,
        machine.get("cpu"),
        machine.get("cores"),
        machine.get("load average at start"),
        names.join(" "),
        chosen.iter().map(|w| w.name).collect::<Vec<_>>().join(" "),
        o.threads,
        o.runs,
        o.scale
    );

    let open = |name: &str, header: &str| {
        let path = o.out.join(name);
        let mut f = File::create(&path).unwrap_or_else(|e| fail(format!("{}: {e}", path.display())));
        let _ = writeln!(f, "{header}");
        f
    };
    // Written now and again at the end, so that a run cut short (a time limit)
    // still leaves a results directory that `report` can read.
    let _ = std::fs::write(o.out.join("machine.txt"), machine.to_text());
    let mut samples_csv = open("samples.csv", results::SAMPLES_HEADER);
    let mut latency_csv = open("latency.csv", results::LATENCY_HEADER);

    // Large-block latency: each allocator (and pattern-alloc per backend) in turn, a few rounds.
    let latency_program = o.dir.join("workloads").join(workloads::LATENCY);
    if latency_program.is_file() {
        // One round: each point is already a median of 7-21 repetitions inside
        // the probe, and the 256 MiB fills of the eager modes are the costliest
        // part of a budgeted run.
        let rounds = 1;
        let scale = if o.smoke { 0.05 } else { o.scale.clamp(0.2, 1.0) }; // below 0.1: sizes up to 16 MiB only
        let t = Instant::now();
        for run in 0..rounds {
            for (a, preload) in rotated(&allocators, run) {
                let inv = workloads::Invocation {
                    program: latency_program.clone(),
                    args: vec!["1".into(), format!("{scale}")],
                    stdin: None,
                };
                let m = exec::measure(&[inv], a, preload.as_deref(), &scratch, o.timeout, true);
                if m.status != "ok" {
                    note(format!("large_latency under {} failed: {}", a.name, m.status), &mut notes);
                    continue;
                }
                for line in m.stdout.lines() {
                    let v: Vec<f64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
                    if v.len() == 4 {
                        let p = LatencyPoint {
                            machine: label.clone(),
                            allocator: a.name.to_string(),
                            run,
                            size: v[0] as u64,
                            malloc_ns: v[1],
                            touch_ns: v[2],
                            free_ns: v[3],
                        };
                        let _ = latency_csv.write_all(results::latency_row(&p).as_bytes());
                        let _ = latency_csv.flush();
                    }
                }
            }
        }
        println!("large-block latency: {rounds} rounds in {:.1} s", t.elapsed().as_secs_f64());
    } else {
        note(format!("workloads/{} not in the prepared directory: no latency plot", workloads::LATENCY), &mut notes);
    }

    // The rounds: every run goes through all workloads, thread counts and allocators
    // (the allocator order rotates per run), so drift in machine load spreads evenly.
    let workload_allocators: Vec<(&Allocator, Option<PathBuf>)> =
        allocators.iter().filter(|(a, _)| !a.latency_only).cloned().collect();
    let mut runs = o.runs;
    let rounds_started = Instant::now();
    let mut run = 0;
    while run < runs {
        let round_started = Instant::now();
        for w in &chosen {
            for &threads in &o.threads {
                let copies = match w.invocations(&o.dir, threads, o.scale) {
                    Ok(c) => c,
                    Err(_) => continue,
                };
                let mut line = format!("run {}/{} {} t={}:", run + 1, runs, w.name, threads);
                for (a, preload) in rotated(&workload_allocators, run) {
                    let m = exec::measure(&copies, a, preload.as_deref(), &scratch, o.timeout, false);
                    let s = Sample {
                        machine: label.clone(),
                        workload: w.name.to_string(),
                        threads,
                        allocator: a.name.to_string(),
                        run,
                        wall_s: m.wall_s,
                        user_s: m.user_s,
                        sys_s: m.sys_s,
                        max_rss_kib: m.max_rss_kib,
                        status: m.status.clone(),
                    };
                    let _ = samples_csv.write_all(results::sample_row(&s).as_bytes());
                    let _ = samples_csv.flush();
                    if m.status == "ok" {
                        line.push_str(&format!(" {} {:.3}", a.name, m.wall_s));
                    } else {
                        line.push_str(&format!(" {} FAILED", a.name));
                        note(
                            format!("{} t={} under {} run {}: {}", w.name, threads, a.name, run + 1, m.status),
                            &mut notes,
                        );
                    }
                }
                println!("{line}");
            }
        }
        let round = round_started.elapsed().as_secs_f64();
        if run == 0 {
            let mut projected = round * runs as f64;
            if let Some(budget) = o.budget {
                let left = budget - started.elapsed().as_secs_f64();
                let fit = ((left / round).floor() as u32 + 1).clamp(1, runs);
                if fit < runs {
                    note(
                        format!("--budget-seconds {budget}: {fit} runs instead of {runs} (one run took {round:.0} s)"),
                        &mut notes,
                    );
                    runs = fit;
                    projected = round * runs as f64;
                }
            }
            println!(
                "one run took {round:.1} s; {runs} runs: about {projected:.0} s, done about {:.0} s from the start",
                started.elapsed().as_secs_f64() + projected - round
            );
        }
        run += 1;
    }
    machine.set("load average at end", results::load_average());
    machine.set("runs", runs.to_string());
    machine.set("scale", format!("{}", o.scale));
    machine.set("threads", o.threads.iter().map(u32::to_string).collect::<Vec<_>>().join(","));
    machine.set(
        "duration",
        format!("{:.0} s ({:.0} s of rounds)", started.elapsed().as_secs_f64(), rounds_started.elapsed().as_secs_f64()),
    );
    let _ = std::fs::write(o.out.join("machine.txt"), machine.to_text());
    let _ = std::fs::write(o.out.join("notes.txt"), notes.iter().map(|n| format!("{n}\n")).collect::<String>());
    let _ = std::fs::remove_dir_all(&scratch);

    let mut all = Results::default();
    Results::load(&o.out, &mut all).unwrap_or_else(|e| fail(e));
    report::write(&all, &o.out, None).unwrap_or_else(|e| fail(e));
    println!(
        "bench-compare: done in {:.0} s; raw results {}/samples.csv, report {}/report.md",
        started.elapsed().as_secs_f64(),
        o.out.display(),
        o.out.display()
    );
}

fn rotated<T: Clone>(items: &[T], by: u32) -> Vec<T> {
    let n = items.len().max(1);
    let k = by as usize % n;
    items[k..].iter().chain(items[..k].iter()).cloned().collect()
}

fn report_command(args: &[String]) {
    let mut out = PathBuf::from("bench-report");
    let mut update: Option<PathBuf> = None;
    let mut dirs = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = PathBuf::from(it.next().unwrap_or_else(|| fail("--out needs a value"))),
            "--update" => update = Some(PathBuf::from(it.next().unwrap_or_else(|| fail("--update needs a value")))),
            flag if flag.starts_with("--") => fail(format!("unknown option {flag}\n{USAGE}")),
            dir => dirs.push(PathBuf::from(dir)),
        }
    }
    if dirs.is_empty() {
        fail(format!("report needs at least one results directory\n{USAGE}"));
    }
    let mut all = Results::default();
    for d in &dirs {
        Results::load(d, &mut all).unwrap_or_else(|e| fail(e));
    }
    std::fs::create_dir_all(&out).unwrap_or_else(|e| fail(format!("{}: {e}", out.display())));
    report::write(&all, &out, update.as_deref()).unwrap_or_else(|e| fail(e));
    println!("bench-compare: report in {}/report.md", out.display());
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => run(parse_run(&args[1..])),
        Some("report") => report_command(&args[1..]),
        _ => fail(USAGE),
    }
}
