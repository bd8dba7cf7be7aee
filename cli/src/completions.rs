//! `courier completions`: prints a shell completion script.

use std::io::Write;

use clap::{Args, Command};
use clap_complete::Shell;

/// Print a completion script for a shell.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:\n  \
    courier completions bash > ~/.local/share/bash-completion/completions/courier\n  \
    courier completions zsh > ~/.zfunc/_courier\n  \
    courier completions fish > ~/.config/fish/completions/courier.fish")]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    pub shell: Shell,
}

/// Writes the script for `command` to `out`.
pub fn run(args: &CompletionsArgs, command: &mut Command, out: &mut dyn Write) {
    let name = command.get_name().to_owned();
    clap_complete::generate(args.shell, command, name, out);
}
