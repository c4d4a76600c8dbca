//! The fuzzers' corpora and every input that ever crashed a target (fuzz/corpus/<target>/,
//! fuzz/regressions/<target>/), replayed on stable through the same entry points the cargo-fuzz
//! targets call (stateless_dcr::fuzzing). A panic is a failure.

use std::path::Path;

#[test]
fn every_stored_fuzz_input_replays_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for (name, target) in stateless_dcr::fuzzing::TARGETS {
        let mut inputs = 0;
        for kind in ["corpus", "regressions"] {
            let dir = root.join(kind).join(name);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{name}: {} panicked", path.display());
                inputs += 1;
            }
        }
        assert!(inputs > 0, "no stored inputs for the fuzz target {name}");
        replayed += inputs;
    }
    eprintln!("replayed {replayed} fuzz inputs");
}
