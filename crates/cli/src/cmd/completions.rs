//! `cpumodel completions SHELL`: a completion script generated from the
//! same clap definitions that parse the command line, so it cannot offer a
//! flag the program does not take.

use clap::{CommandFactory as _, ValueEnum};
use clap_complete::Shell as Generator;

use crate::cli::Args;
use crate::error::CliError;
use crate::shared::Output;

/// Arguments of `cpumodel completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The shells with a completion script.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// bash (source it, or put it in bash-completion's completions directory).
    Bash,
    /// zsh (put it as _cpumodel in a directory of $fpath).
    Zsh,
    /// fish (put it as cpumodel.fish in ~/.config/fish/completions).
    Fish,
}

impl CompletionsArgs {
    /// Runs `cpumodel completions`.
    ///
    /// # Errors
    /// None; the script is generated in memory.
    pub fn run(&self) -> Result<Output, CliError> {
        let generator = match self.shell {
            Shell::Bash => Generator::Bash,
            Shell::Zsh => Generator::Zsh,
            Shell::Fish => Generator::Fish,
        };
        let mut script = Vec::new();
        clap_complete::generate(generator, &mut Args::command(), "cpumodel", &mut script);
        Ok(Output::ok(String::from_utf8_lossy(&script).into_owned()))
    }
}
