//! A small schema registry that speaks Confluent's REST API, for developing and testing
//! Avro over Kafka where no Confluent Schema Registry can be installed (`schema-registry`
//! binary, started by `scripts/registry.sh`).
//!
//! Clients register schemas under subjects (`events-value`), get ids back and look schemas up
//! by id; a subject's versions must stay compatible under its mode ([`compatibility`]). What
//! it holds is kept in one file under its directory ([`store`]), so ids survive a restart.
//! Brooklet's own client in the engine (`brooklet::registry`) talks to it over HTTP exactly as
//! to Confluent's registry, and so does confluent-kafka's `SchemaRegistryClient` in the tests.

pub mod compatibility;
pub mod http;
pub mod store;

use std::path::Path;

/// Serves the registry kept in `dir` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, dir: &Path, basic_auth: Option<&str>) -> anyhow::Result<()> {
    let store = store::Store::open(dir)?;
    axum::serve(listener, http::router(store, basic_auth)).await?;
    Ok(())
}

/// Where `scripts/registry.sh` starts the registry.
pub const DEFAULT_URL: &str = "http://127.0.0.1:38081";

/// The registry to use: `BROOKLET_SCHEMA_REGISTRY_URL`, else the one `scripts/registry.sh
/// start` runs, if it answers.
pub fn url() -> Option<String> {
    let url = std::env::var("BROOKLET_SCHEMA_REGISTRY_URL").unwrap_or_else(|_| DEFAULT_URL.to_string());
    let authority = url.trim_start_matches("http://").trim_start_matches("https://");
    let host_port = authority.split('/').next()?;
    let addr = std::net::ToSocketAddrs::to_socket_addrs(host_port).ok()?.next()?;
    std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(500)).ok().map(|_| url)
}

/// Why a chapter or test that needs a registry did not run.
pub const NO_REGISTRY: &str =
    "no schema registry answers (start one with scripts/registry.sh start, or set BROOKLET_SCHEMA_REGISTRY_URL)";

/// [`url`] for a test: `None` (skip) when no registry answers, unless
/// `BROOKLET_REQUIRE_REGISTRY` is set, then a failure that says how to start one.
pub fn url_for_test(test: &str) -> Option<String> {
    let found = url();
    if found.is_none() {
        let why = NO_REGISTRY;
        if std::env::var_os("BROOKLET_REQUIRE_REGISTRY").is_some() {
            panic!("{test}: {why}");
        }
        eprintln!("skipped {test}: {why}");
    }
    found
}
