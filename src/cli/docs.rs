//! `smsgate completions <shell>` and `smsgate man`: generated from the command line's own
//! definition, so they cannot describe an option the binary does not have. The Debian package
//! ships the copies kept in `docs/man/` and `docs/completions/` (a test keeps them current).

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;

/// Arguments of `smsgate completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The completion script for `shell`.
pub fn completion_script(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "smsgate", &mut out);
    out
}

/// The manual page, in roff.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    Ok(out)
}

/// `smsgate completions <shell>`
pub fn completions(args: &CompletionsArgs) -> ExitCode {
    write_out(&completion_script(args.shell))
}

/// `smsgate man`
pub fn man() -> ExitCode {
    match man_page() {
        Ok(page) => write_out(&page),
        Err(e) => {
            eprintln!("error: cannot render the manual page: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write_out(bytes: &[u8]) -> ExitCode {
    // A closed standard output (`| head`) is not an error worth a message.
    let _ = std::io::stdout().lock().write_all(bytes);
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The copies the Debian package ships. After a change to the command line:
    /// `SMSGATE_UPDATE_DOCS=1 cargo test --lib cli::docs`.
    const SHIPPED: [(&str, Option<Shell>); 4] = [
        ("docs/man/smsgate.1", None),
        ("docs/completions/smsgate.bash", Some(Shell::Bash)),
        ("docs/completions/_smsgate", Some(Shell::Zsh)),
        ("docs/completions/smsgate.fish", Some(Shell::Fish)),
    ];

    #[test]
    fn shipped_manual_and_completions_match_the_command_line() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for (path, shell) in SHIPPED {
            let generated = match shell {
                Some(s) => completion_script(s),
                None => man_page().unwrap(),
            };
            let file = root.join(path);
            if std::env::var_os("SMSGATE_UPDATE_DOCS").is_some() {
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, &generated).unwrap();
            }
            let committed = std::fs::read(&file).unwrap_or_default();
            assert!(
                committed == generated,
                "{path} is out of date: run SMSGATE_UPDATE_DOCS=1 cargo test --lib cli::docs"
            );
        }
        let page = String::from_utf8(man_page().unwrap()).unwrap();
        assert!(
            page.contains(".TH smsgate 1") && page.contains("serve"),
            "{page}"
        );
        let bash = String::from_utf8(completion_script(Shell::Bash)).unwrap();
        assert!(bash.contains("completions") && bash.contains("--config"));
    }
}
