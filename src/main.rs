use clap::Parser;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = durin::cli::Cli::parse();
    if let Err(e) = durin::cli::run(cli).await {
        tracing::error!(error = %e, "durin failed");
        eprintln!("durin: {e}");
        std::process::exit(1);
    }
}
