//! The `stateless-dcr` command: everything lives in the library (`stateless_dcr::cli`).
use std::process::ExitCode;

fn main() -> ExitCode {
    stateless_dcr::cli::main()
}
