fn main() {
    std::process::exit(accord::cli::main());
}
