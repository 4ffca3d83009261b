//! `pattern-alloc`: runs programs under the LD_PRELOAD library.
//!
//! - `run`: one run with the library preloaded and the options given; the
//!   process is replaced by the command, so its exit status is the command's.
//! - `hunt`: one run per pattern with the same arguments and stdin, compared;
//!   a difference means the program reads heap memory it never wrote.
//!
//! Exit status of the tool itself: 2 for usage or tool errors (one line on
//! stderr); `hunt` adds 0 (runs agree), 1 (runs diverge), 3 (the command is
//! nondeterministic by itself, nothing can be concluded).

mod args;
mod capture;
mod compare;
mod hunt;
mod library;
mod signals;

use std::os::unix::process::CommandExt as _;
use std::process::{Command, ExitCode};

use args::{Parsed, RunArgs};

/// Usage or tool error.
pub const EXIT_ERROR: u8 = 2;

const USAGE: &str = "\
usage: pattern-alloc run  [--fill 0xNN] [--free-fill 0xNN] [--class-patterns] [--stats]
                          [--crash-report] [--options KEY=VALUE:...] [--lib PATH] [--] CMD [ARGS...]
       pattern-alloc hunt [--patterns 0x00,0xff,0xaa] [--runs N] [--timeout SECONDS]
                          [--no-crash-report] [--options KEY=VALUE:...] [--lib PATH] [--] CMD [ARGS...]

run   runs CMD with libpattern_alloc.so preloaded and exits with CMD's status.
hunt  runs CMD once per pattern (the first pattern, the baseline, twice first; with
      --runs N every pattern N times), with the same arguments and the same stdin (read
      once, replayed), and compares stdout, stderr and the exit status or signal.
      Exit 0: all runs agree. 1: they diverge: CMD reads heap memory it never wrote.
      3: runs under the same pattern differ: CMD is nondeterministic by itself.
      2: usage or tool error. Progress goes to stderr, the report to stdout.

Options are passed to the library in PATTERN_ALLOC, appended to any value already set
(the tool's keys win). The library is looked for in --lib PATH, then $PATTERN_ALLOC_LIB,
then beside this program (cargo build --release --workspace puts both in target/release).
";

fn main() -> ExitCode {
    let arguments: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match args::parse(&arguments) {
        Ok(Parsed::Help) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Parsed::Run(run)) => exec_run(run),
        Ok(Parsed::Hunt(hunt)) => ExitCode::from(hunt::hunt(hunt)),
        Err(problem) => fail(&format!("{problem} (pattern-alloc --help shows the usage)")),
    }
}

/// Prints one line and returns the tool-error status.
pub fn fail(message: &str) -> ExitCode {
    eprintln!("pattern-alloc: {message}");
    ExitCode::from(EXIT_ERROR)
}

fn exec_run(run: RunArgs) -> ExitCode {
    let library = match library::find(run.lib.as_deref()) {
        Ok(library) => library,
        Err(problem) => return fail(&problem),
    };
    let mut command = Command::new(&run.command[0]);
    command.args(&run.command[1..]);
    library::preload(&mut command, &library, &run.options);
    // Only returns on failure: the command replaces this process.
    let error = command.exec();
    fail(&format!("cannot run {}: {error}", run.command[0].to_string_lossy()))
}
