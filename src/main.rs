//! The binary: runs the library's entry point and exits with the code it returns.
fn main() -> std::process::ExitCode {
    aimharder_refresh::main_entry()
}
