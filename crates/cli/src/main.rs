//! The `cpumodel` command: argument handling and output, nothing else.
//!
//! Every answer comes from the library crates. The clap root is in
//! `cli.rs`; each subcommand is one file in `cmd/`, declaring its own flags
//! and output formats, reading the files named on the command line,
//! calling the libraries and returning one complete result, so a failure
//! never leaves partial output behind. Errors from any layer, usage errors
//! included, are rendered once, here, as a single line on stderr with exit
//! code 2.
//!
//! Exit codes: 0 success, 1 a negative answer, 2 an error (bad input or usage).

// The doc comments of the argument types are also clap's help text, written
// for a terminal: `<cpu>` and `[libvirt]` there are text, not HTML or links.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]
#![forbid(unsafe_code)]

mod cli;
mod cmd;
mod error;
mod names;
mod shared;
mod topology_args;

/// mimalloc instead of the system allocator: `fleet import` parses
/// documents on several threads at once, where glibc's arena locks and
/// frees cost several percent of the run (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write as _;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser as _;

fn main() -> ExitCode {
    let args = match cli::Args::try_parse() {
        Ok(args) => args,
        // --version names the release `--libvirt` chose, when it is valid.
        Err(e) if e.kind() == ErrorKind::DisplayVersion => {
            if let Some(release) = requested_release() {
                println!("cpumodel {}", cli::version_of(release));
                return ExitCode::SUCCESS;
            }
            e.exit()
        }
        // --help: clap's text on stdout, exit 0.
        Err(e) if e.kind() == ErrorKind::DisplayHelp => e.exit(),
        Err(e) => {
            eprintln!(
                "cpumodel: error: {}",
                error::one_line(&error::usage_line(&e))
            );
            return ExitCode::from(2);
        }
    };
    if let Some(release) = args.libvirt {
        shared::select_release(release);
    }
    match args.command.run() {
        Ok(out) => {
            if out.text.len() > 1 << 16 {
                shared::widen_stdout_pipe();
            }
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`cpumodel models | head`) is not an error worth reporting.
            let _ = stdout
                .write_all(out.text.as_bytes())
                .and_then(|()| stdout.flush());
            ExitCode::from(out.code)
        }
        Err(e) => {
            eprintln!("cpumodel: error: {}", error::one_line(&e.to_string()));
            ExitCode::from(2)
        }
    }
}

/// The release named by `--libvirt VERSION` (or `--libvirt=VERSION`) on a
/// command line clap stopped reading at `--version`.
fn requested_release() -> Option<&'static cpumodel_map::Release> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().enumerate().find_map(|(i, a)| {
        let name = match a.strip_prefix("--libvirt") {
            Some("") => args.get(i + 1)?.as_str(),
            Some(rest) => rest.strip_prefix('=')?,
            None => return None,
        };
        cpumodel_map::Release::find(name).ok()
    })
}
