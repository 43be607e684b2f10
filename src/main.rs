fn main() -> std::process::ExitCode {
    aimharder_refresh::main_entry()
}
