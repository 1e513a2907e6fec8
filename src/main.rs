use clap::Parser;

/// mimalloc rather than the C library's malloc: it keeps allocations of one size together, so
/// the memory of runs that were frozen or archived goes back to the system instead of staying
/// as holes between the ones that remain (glibc's resident size stayed at the peak), and it
/// is faster under the engine's allocation pattern.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    durin::allocator::limit_arenas();
    let cli = durin::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(cli.log_filter())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_json() {
        logs.json().init();
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("durin: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(durin::cli::run(cli)) {
        tracing::error!(error = %e, "durin failed");
        eprintln!("durin: {e}");
        std::process::exit(1);
    }
}
