//! Real programs nobody here wrote, run with and without the library: same
//! stdout, same stderr, same exit status. python3 (a JSON/dict workload and a
//! threaded one), sqlite3 (20k inserts in a transaction, aggregates), sort,
//! gzip, perl, a shell pipeline and gcc itself. A missing program fails the
//! test with the package to install; nothing is skipped.

use std::fmt::Write as _;
use std::time::Duration;

use allocator_tests::preload::*;
use allocator_tests::Run;

/// How a real program is run; the same for both runs.
struct Program {
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
}

impl Program {
    fn new(args: &[&str]) -> Program {
        Program { args: args.iter().map(|a| a.to_string()).collect(), stdin: None }
    }

    fn stdin(mut self, data: impl Into<Vec<u8>>) -> Program {
        self.stdin = Some(data.into());
        self
    }

    fn exec(&self, preload: Option<Option<&str>>) -> Exec {
        let mut exec = match preload {
            None => Exec::new(&self.args[0]),
            Some(options) => Exec::preloaded(&self.args[0], options),
        };
        // Same locale for both runs, so sort orders and messages agree.
        exec = exec.args(&self.args[1..]).env("LC_ALL", "C").limit(Duration::from_secs(120));
        if let Some(data) = &self.stdin {
            exec = exec.stdin(data.clone());
        }
        exec
    }
}

/// Runs `program` without the library (it must succeed), then with it under
/// each of `options`; asserts the same status, stdout and stderr. Returns the
/// plain run.
#[track_caller]
fn same_with_and_without(what: &str, program: &Program, options: &[Option<&str>]) -> Run {
    let plain = program.exec(None).run();
    assert_success(&plain, &format!("{what} without the library"));
    for &opts in options {
        let preloaded = program.exec(Some(opts)).run();
        let label = format!("{what} under LD_PRELOAD with PATTERN_ALLOC={opts:?}");
        assert!(!preloaded.timed_out, "{label}: hung\n{}", describe(&preloaded));
        assert_eq!(
            preloaded.status.code(),
            plain.status.code(),
            "{label}: exit status differs from the run without the library\n{}",
            describe(&preloaded)
        );
        assert!(
            preloaded.stdout == plain.stdout,
            "{label}: stdout differs from the run without the library\n--- without ---\n{}\n--- with ---\n{}",
            tail(&plain.stdout, 4000),
            describe(&preloaded)
        );
        assert!(
            preloaded.stderr == plain.stderr,
            "{label}: stderr differs from the run without the library\n--- without ---\n{}\n--- with ---\n{}",
            tail(&plain.stderr, 4000),
            describe(&preloaded)
        );
    }
    plain
}

const PYTHON_JSON: &str = r#"
import hashlib, json
d = {f"key{i}": {"n": i, "s": "x" * (i % 50), "l": list(range(i % 20)), "f": i / 7} for i in range(40000)}
s = json.dumps(d, sort_keys=True)
e = json.loads(s)
assert e == d
big = [str(i) * (i % 100) for i in range(20000)]
blob = bytearray(3 << 20)
blob[::4096] = b"x" * len(blob[::4096])
print(len(s), hashlib.sha256(s.encode()).hexdigest(), sum(map(len, big)), blob.count(0))
"#;

const PYTHON_THREADS: &str = r#"
import hashlib, queue, threading
q = queue.Queue()
def work(t):
    acc = []
    for i in range(20000):
        acc.append(("%d-%d" % (t, i)) * (i % 7 + 1))
        if len(acc) > 500:
            acc = acc[250:]
    h = hashlib.sha256("".join(acc).encode()).hexdigest()
    q.put((t, h, len(bytearray(100000 + t)), sorted({i % 1000: str(i) for i in range(5000)}.items())[-1]))
ts = [threading.Thread(target=work, args=(t,)) for t in range(8)]
for t in ts:
    t.start()
for t in ts:
    t.join()
for r in sorted(q.get() for _ in range(8)):
    print(*r)
"#;

#[test]
fn python_json_and_dicts() {
    require_tool("python3", "python3");
    let program = Program::new(&["python3", "-c", PYTHON_JSON]);
    let plain = same_with_and_without("python3 json", &program, &[None, Some("class_patterns=1:free_fill=0x55")]);
    assert!(plain.stdout.split_whitespace().count() == 4, "unexpected output: {}", plain.stdout);
}

#[test]
fn python_threads() {
    require_tool("python3", "python3");
    let program = Program::new(&["python3", "-c", PYTHON_THREADS]);
    let plain = same_with_and_without("python3 threads", &program, &[None]);
    assert_eq!(plain.stdout.lines().count(), 8, "unexpected output: {}", plain.stdout);
}

/// 20k rows inserted one statement at a time in a transaction, more through
/// a recursive CTE, an index, aggregates, a self-join.
fn sqlite_script() -> String {
    let mut sql =
        String::from("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val REAL, data BLOB);\nBEGIN;\n");
    for i in 0..20000u64 {
        let _ = writeln!(
            sql,
            "INSERT INTO t VALUES({i}, 'name-{:06}', {}, {}.5, zeroblob({}));",
            (i * 7919) % 20011,
            i % 97,
            i * 3,
            i % 300
        );
    }
    sql.push_str(
        "COMMIT;
CREATE TABLE u(x INTEGER, label TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000)
INSERT INTO u SELECT x, printf('%08d-%s', x * 31 % 20000, hex(x)) FROM c;
CREATE INDEX t_grp ON t(grp);
CREATE INDEX u_label ON u(label);
SELECT count(*), sum(grp), min(name), max(name), total(val), sum(length(data)) FROM t;
SELECT grp, count(*), avg(val), group_concat(id % 10, '') FROM t GROUP BY grp ORDER BY grp LIMIT 5;
SELECT name FROM t ORDER BY name DESC LIMIT 3;
SELECT count(*) FROM t a JOIN t b ON a.grp = b.grp AND a.id < b.id WHERE a.id < 500;
SELECT count(*), min(label), max(label) FROM u WHERE label LIKE '0001%';
SELECT u.x, t.name FROM u JOIN t ON t.id = u.x ORDER BY u.label LIMIT 4;
DELETE FROM t WHERE id % 3 = 0;
VACUUM;
SELECT count(*), sum(id) FROM t;
",
    );
    sql
}

#[test]
fn sqlite3_inserts_and_aggregates() {
    require_tool("sqlite3", "sqlite3");
    let program = Program::new(&["sqlite3", ":memory:"]).stdin(sqlite_script());
    let plain = same_with_and_without("sqlite3", &program, &[None, Some("large_threshold=0")]);
    assert!(plain.stdout.starts_with("20000|"), "unexpected output: {}", tail(&plain.stdout, 2000));
}

/// Lines of pseudo-random words and numbers.
fn text_lines(count: u64) -> String {
    let mut out = String::new();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for i in 0..count {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let _ = writeln!(out, "{:x} {} line{} {}", x % 0xFFFFF, x % 1000, i, "w".repeat((x % 40) as usize));
    }
    out
}

#[test]
fn sort() {
    require_tool("sort", "coreutils");
    let input = text_lines(200_000);
    let plain = same_with_and_without("sort", &Program::new(&["sort"]).stdin(input.clone()), &[None]);
    assert_eq!(plain.stdout.lines().count(), 200_000);
    same_with_and_without("sort -n -k2 -u", &Program::new(&["sort", "-n", "-k2", "-u"]).stdin(input), &[None]);
}

#[test]
fn gzip_round_trip() {
    require_tool("gzip", "gzip");
    require_tool("sha256sum", "coreutils");
    require_tool("cmp", "diffutils");
    let input = programs_dir().join("gzip-input.txt");
    std::fs::write(&input, text_lines(100_000)).expect("write the gzip input");
    let script = format!(
        "gzip -9nc < '{0}' | sha256sum && gzip -1nc < '{0}' | gzip -dc | cmp - '{0}' && echo round trip ok",
        input.display()
    );
    let plain = same_with_and_without("gzip", &Program::new(&["sh", "-c", &script]), &[None]);
    assert!(plain.stdout.ends_with("round trip ok\n"), "{}", plain.stdout);
}

#[test]
fn perl_hashes() {
    require_tool("perl", "perl");
    let script = r#"
my %h; $h{"k$_"} = "v" x ($_ % 37) for 1 .. 100000;
my $s = 0; $s += length($h{$_}) for sort keys %h;
my @a = map { [$_, $_ * 2, "x" x ($_ % 100)] } 1 .. 50000;
my $t = join("", map { $_->[2] } @a[0 .. 999]);
print scalar(keys %h), " $s ", scalar(@a), " ", length($t), "\n";
print join(",", (sort { $a <=> $b } map { ($_ * 7919) % 100003 } 1 .. 1000)[0 .. 9]), "\n";
"#;
    let plain = same_with_and_without("perl", &Program::new(&["perl", "-e", script]), &[None]);
    assert!(plain.stdout.starts_with("100000 "), "{}", plain.stdout);
}

#[test]
fn shell_pipeline_ls_wc() {
    require_tool("ls", "coreutils");
    let program = Program::new(&["sh", "-c", "ls -R /usr/include | wc -l"]);
    let plain = same_with_and_without("ls -R /usr/include | wc -l", &program, &[None]);
    let lines: u64 = plain.stdout.trim().parse().expect("a line count");
    assert!(lines > 100, "only {lines} lines");
}

/// gcc's driver, cc1 and as, all preloaded: the same assembly comes out.
#[test]
fn gcc_compiles_the_same() {
    require_tool("gcc", "gcc");
    let source = sources_dir().join("compat.c");
    let include = sources_dir();
    let program = Program::new(&[
        "gcc",
        "-O2",
        "-S",
        "-o",
        "-",
        "-I",
        include.to_str().expect("UTF-8 path"),
        source.to_str().expect("UTF-8 path"),
    ]);
    let plain = same_with_and_without("gcc -O2 -S", &program, &[None]);
    assert!(plain.stdout.contains("main:"), "no main in the assembly");
}
