//! `schema-registry`: a Confluent-compatible schema registry on 127.0.0.1 (see
//! `brooklet_book::registry`).
//!
//! ```text
//! cargo run --bin schema-registry -- --port 38081 --dir /tmp/registry
//! cargo run --bin schema-registry -- --port 38081 --dir /tmp/registry --basic-auth-env REGISTRY_AUTH
//! ```
//!
//! Basic auth is off unless `--basic-auth-env` names an environment variable holding
//! `user:password` (a password is never taken on the command line, where `ps` shows it).

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "A Confluent-compatible schema registry for Avro schemas")]
struct Args {
    /// The port to listen on (127.0.0.1); 0 picks a free one.
    #[arg(long, default_value_t = 38081)]
    port: u16,
    /// Where the registry keeps its schemas.
    #[arg(long)]
    dir: PathBuf,
    /// An environment variable holding `user:password`: requests must then authenticate.
    #[arg(long)]
    basic_auth_env: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let basic_auth = match &args.basic_auth_env {
        Some(var) => Some(std::env::var(var).with_context(|| format!("--basic-auth-env: {var} is not set"))?),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
        println!("schema registry on http://{}", listener.local_addr()?);
        brooklet_book::registry::serve(listener, &args.dir, basic_auth.as_deref()).await
    })
}
