//! The `cpumodel` command: argument handling and output, nothing else.
//!
//! Every answer comes from the library crates; this file parses flags, reads
//! the files named on the command line, calls the library and prints one
//! complete result. Errors from any layer are rendered once, here, as a
//! single line on stderr with exit code 2.
//!
//! Exit codes: 0 success, 1 a negative answer, 2 an error (bad input or usage).

// The doc comments in cli.rs are also clap's help text, written for a
// terminal: `<cpu>` and `[libvirt]` there are text, not HTML or links.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod cpuid_cmd;
mod error;
mod topology_args;
mod verify_cmd;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let args = match cli::Args::try_parse() {
        Ok(args) => args,
        // A bad topology count is one line, as the command's own errors.
        Err(e) => match topology_args::one_line_error(&e) {
            Some(message) => {
                eprintln!("cpumodel: error: {message}");
                return ExitCode::from(2);
            }
            None => e.exit(),
        },
    };
    match commands::run(&args) {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`cpumodel models | head`) is not an error worth reporting.
            let _ = stdout
                .write_all(out.text.as_bytes())
                .and_then(|()| stdout.flush());
            ExitCode::from(out.code)
        }
        Err(e) => {
            eprintln!("cpumodel: error: {e}");
            ExitCode::from(2)
        }
    }
}
