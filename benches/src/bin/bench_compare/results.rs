//! Raw results on disk (one directory per run: `samples.csv`, `latency.csv`,
//! `machine.txt`) and reading them back, several directories at once, for
//! the report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Sample {
    pub machine: String,
    pub workload: String,
    pub threads: u32,
    pub allocator: String,
    pub run: u32,
    pub wall_s: f64,
    pub user_s: f64,
    pub sys_s: f64,
    pub max_rss_kib: u64,
    pub status: String,
}

#[derive(Debug, Clone)]
pub struct LatencyPoint {
    pub machine: String,
    pub allocator: String,
    pub run: u32,
    pub size: u64,
    pub malloc_ns: f64,
    pub touch_ns: f64,
    pub free_ns: f64,
}

/// What a results directory says about the machine it came from: ordered
/// `key: value` lines (label, cpu, cores, kernel, date, load averages, notes).
#[derive(Debug, Clone, Default)]
pub struct Machine {
    pub fields: Vec<(String, String)>,
}

impl Machine {
    pub fn get(&self, key: &str) -> &str {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("?")
    }
    pub fn set(&mut self, key: &str, value: String) {
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.fields.push((key.to_string(), value)),
        }
    }
    pub fn to_text(&self) -> String {
        self.fields.iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
    }
    pub fn parse(text: &str) -> Machine {
        let fields = text
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Machine { fields }
    }
}

fn first_line_of(path: &str, prefix: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| l.strip_prefix(prefix).map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string()))
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// UTC date and time from the system clock (civil-from-days, no dependency).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

/// Describes this machine.
pub fn this_machine(label: Option<&str>) -> Machine {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let cpu = first_line_of("/proc/cpuinfo", "model name").unwrap_or_else(|| "?".into());
    let kernel =
        std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default();
    let distro =
        first_line_of("/etc/os-release", "PRETTY_NAME=").map(|s| s.trim_matches('"').to_string()).unwrap_or_default();
    let mem_kib: u64 = first_line_of("/proc/meminfo", "MemTotal")
        .and_then(|v| v.trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let mut m = Machine::default();
    m.set("label", label.map(str::to_string).unwrap_or_else(|| format!("{cores} cores")));
    m.set("cpu", cpu);
    m.set("cores", cores.to_string());
    m.set("memory", format!("{} GiB", mem_kib >> 20));
    m.set("kernel", kernel);
    m.set("os", distro);
    m.set("date", utc_now());
    m.set("load average at start", load_average());
    m
}

fn clean(s: &str) -> String {
    s.replace([',', '\n', '\r'], ";")
}

pub const SAMPLES_HEADER: &str = "machine,workload,threads,allocator,run,wall_s,user_s,sys_s,max_rss_kib,status";
pub const LATENCY_HEADER: &str = "machine,allocator,run,size,malloc_ns,touch_ns,free_ns";

pub fn sample_row(s: &Sample) -> String {
    format!(
        "{},{},{},{},{},{:.4},{:.4},{:.4},{},{}\n",
        clean(&s.machine),
        s.workload,
        s.threads,
        s.allocator,
        s.run,
        s.wall_s,
        s.user_s,
        s.sys_s,
        s.max_rss_kib,
        clean(&s.status)
    )
}

pub fn latency_row(p: &LatencyPoint) -> String {
    format!(
        "{},{},{},{},{:.0},{:.0},{:.0}\n",
        clean(&p.machine),
        p.allocator,
        p.run,
        p.size,
        p.malloc_ns,
        p.touch_ns,
        p.free_ns
    )
}

/// Everything read from one or more results directories.
#[derive(Debug, Default)]
pub struct Results {
    /// Machines by label, in the order first seen.
    pub machines: Vec<Machine>,
    pub samples: Vec<Sample>,
    pub latency: Vec<LatencyPoint>,
    /// Lines of `notes.txt` (missing allocators, skipped workloads), per machine label.
    pub notes: BTreeMap<String, Vec<String>>,
}

fn cell<T: std::str::FromStr>(cells: &[&str], i: usize, what: &str) -> Result<T, String> {
    cells.get(i).and_then(|c| c.parse().ok()).ok_or_else(|| format!("bad {what} in {cells:?}"))
}

impl Results {
    pub fn load(dir: &Path, into: &mut Results) -> Result<(), String> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()))
        };
        let machine = Machine::parse(&read("machine.txt")?);
        let label = machine.get("label").to_string();
        if into.machines.iter().any(|m| m.get("label") == label) {
            return Err(format!("two results directories with the machine label {label:?}: relabel one (--label)"));
        }
        into.machines.push(machine);
        for line in read("samples.csv")?.lines().skip(1).filter(|l| !l.is_empty()) {
            let c: Vec<&str> = line.split(',').collect();
            into.samples.push(Sample {
                machine: label.clone(),
                workload: c.get(1).unwrap_or(&"").to_string(),
                threads: cell(&c, 2, "threads")?,
                allocator: c.get(3).unwrap_or(&"").to_string(),
                run: cell(&c, 4, "run")?,
                wall_s: cell(&c, 5, "wall_s")?,
                user_s: cell(&c, 6, "user_s")?,
                sys_s: cell(&c, 7, "sys_s")?,
                max_rss_kib: cell(&c, 8, "max_rss_kib")?,
                status: c.get(9).unwrap_or(&"").to_string(),
            });
        }
        if let Ok(text) = read("latency.csv") {
            for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
                let c: Vec<&str> = line.split(',').collect();
                into.latency.push(LatencyPoint {
                    machine: label.clone(),
                    allocator: c.get(1).unwrap_or(&"").to_string(),
                    run: cell(&c, 2, "run")?,
                    size: cell(&c, 3, "size")?,
                    malloc_ns: cell(&c, 4, "malloc_ns")?,
                    touch_ns: cell(&c, 5, "touch_ns")?,
                    free_ns: cell(&c, 6, "free_ns")?,
                });
            }
        }
        if let Ok(text) = read("notes.txt") {
            into.notes.entry(label).or_default().extend(text.lines().map(str::to_string));
        }
        Ok(())
    }
}

pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Formats seconds for tables.
pub fn fmt_seconds(s: f64) -> String {
    let mut out = String::new();
    if s >= 10.0 {
        let _ = write!(out, "{s:.1}");
    } else if s >= 0.1 {
        let _ = write!(out, "{s:.2}");
    } else {
        let _ = write!(out, "{s:.3}");
    }
    out
}
