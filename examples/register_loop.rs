//! Profiling helper: register COUNT clients in process, each with a statement of its own, on the
//! development defaults (no status store, no statement cache), with nothing else running. Under
//! callgrind the instruction counts are repeatable, whatever else the machine is doing:
//!
//! ```sh
//! cargo run --release --example mint_statements -- --count 2000 --out /tmp/bodies.jsonl
//! cargo build --release --example register_loop
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     target/release/examples/register_loop /tmp/bodies.jsonl
//! callgrind_annotate /tmp/cg.out | head -60
//! ```

use std::io::BufRead;

use serde_json::{Map, Value};
use stateless_dcr::config::{Config, Management};
use stateless_dcr::Registrar;

fn main() -> Result<(), String> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: register_loop BODIES.jsonl")?;
    let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    let bodies: Vec<Map<String, Value>> = std::io::BufReader::new(file)
        .lines()
        .map(|line| {
            let line = line.map_err(|e| e.to_string())?;
            serde_json::from_str(&line).map_err(|e| e.to_string())
        })
        .collect::<Result<_, String>>()?;
    let config = Config {
        statement_cache_entries: 0,
        management: Management::ReadOnly,
        ..Config::default()
    };
    let registrar = Registrar::without_store(&config).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    let mut bytes = 0;
    for body in &bodies {
        let information = runtime
            .block_on(registrar.register(body, None))
            .map_err(|e| e.to_string())?;
        bytes += serde_json::to_vec(&information)
            .map_err(|e| e.to_string())?
            .len();
    }
    println!("{} registrations, {bytes} bytes of responses", bodies.len());
    Ok(())
}
