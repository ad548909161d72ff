fn main() -> std::process::ExitCode {
    match deputy::cli::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("deputy: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
