//! Status lists (docs/benchmarks.md): a list of 2^20 entries (the default capacity) with 1 % of
//! its clients deleted, at random places: how long signing's compression takes, how long a
//! verifier's decompression takes, and how large the list is on the wire.
//!
//! `cargo bench --bench status_list`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use stateless_dcr::status_list::{Bits, StatusArray};

/// A list of `entries` with `deleted` INVALID entries and `updated` AMENDED ones, spread by a
/// fixed pseudo-random sequence (the same list every run).
fn list(entries: u64, deleted: u64, updated: u64) -> StatusArray {
    let mut list = StatusArray::new(Bits::TWO, entries);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % entries
    };
    for _ in 0..deleted {
        list.set(next(), 1).unwrap();
    }
    for _ in 0..updated {
        list.set(next(), 3).unwrap();
    }
    list
}

fn status_list(c: &mut Criterion) {
    let entries = 1 << 20;
    let one_percent = list(entries, entries / 100, 0);
    let lst = one_percent.encode().unwrap();
    eprintln!(
        "status list of {entries} entries, 1% deleted: lst {} bytes (base64url of {} compressed bytes; {} bytes uncompressed)",
        lst.len(),
        lst.len() * 3 / 4,
        one_percent.bytes().len()
    );
    let empty = list(entries, 0, 0).encode().unwrap();
    eprintln!(
        "status list of {entries} entries, none deleted: lst {} bytes",
        empty.len()
    );
    let mixed = list(entries, entries / 100, entries / 100)
        .encode()
        .unwrap();
    eprintln!(
        "status list of {entries} entries, 1% deleted and 1% updated: lst {} bytes",
        mixed.len()
    );
    let mut group = c.benchmark_group("status_list");
    group.sample_size(20);
    group.bench_function("encode_2^20_1pct_deleted", |b| {
        b.iter(|| black_box(&one_percent).encode().unwrap())
    });
    group.bench_function("decode_2^20_1pct_deleted", |b| {
        b.iter(|| StatusArray::decode(Bits::TWO, black_box(&lst), 16 << 20).unwrap())
    });
    group.bench_function("lookup", |b| {
        b.iter(|| black_box(&one_percent).get(black_box(654_321)))
    });
    group.finish();
}

criterion_group!(benches, status_list);
criterion_main!(benches);
