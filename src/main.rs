use clap::Parser;

fn main() -> std::process::ExitCode {
    rappel::cli::run(rappel::cli::Cli::parse())
}
