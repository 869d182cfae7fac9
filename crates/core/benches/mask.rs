//! Masking a 1 MB chunk of task log with 20 sensitive values registered
//! (each with its JSON, URL and base64 forms, as `Masker` adds them): the
//! work every line of a step's output goes through before it is stored.
//! The log is ~19,000 ordinary lines of build output; one line in 500
//! carries a secret. Measured line by line (as `TaskLog` masks) and as one
//! 1 MB string. Run with `cargo bench -p tako-core --bench mask`.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, Throughput};
use tako_core::Masker;

fn secrets() -> Vec<String> {
    (0..20)
        .map(|n| match n % 4 {
            0 => format!("sk_live_{n:02}a8f3c9e1b7d4f6a2c8e0b3d5f7a9c1e3"),
            1 => format!("P@ss/word+{n:02}&more=chars"),
            2 => format!("ghp_{n:02}Xy7Kq2Lm9Np4Rs6Tu8Vw0Za3Bc5De"),
            _ => format!(
                "-----BEGIN KEY {n}-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX\n-----END KEY-----"
            ),
        })
        .collect()
}

/// About 1 MB of log lines, one in 500 with a secret in it.
fn log_lines(secrets: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut size = 0;
    let mut n = 0usize;
    while size < 1024 * 1024 {
        let mut line = String::new();
        if n % 500 == 499 {
            let secret = &secrets[(n / 500) % secrets.len()];
            let first = secret.lines().next().unwrap_or_default();
            let _ = write!(
                line,
                "curl -H 'Authorization: Bearer {first}' https://api.example.com/deploy"
            );
        } else {
            let _ = write!(
                line,
                "[{n:06}] Compiling module-{} v0.{}.{} (/build/src/module-{})",
                n % 97,
                n % 13,
                n % 7,
                n % 97
            );
        }
        size += line.len() + 1;
        lines.push(line);
        n += 1;
    }
    lines
}

fn mask(c: &mut Criterion) {
    let secrets = secrets();
    let masker = Masker::with_values(secrets.iter().map(String::as_str));
    let lines = log_lines(&secrets);
    let chunk = lines.join("\n");
    let masked = lines
        .iter()
        .filter(|l| masker.mask(l).contains(tako_core::MASK))
        .count();
    assert!(masked > 0, "some lines carry a secret");

    let mut group = c.benchmark_group("mask_1MB_20_secrets");
    group.throughput(Throughput::Bytes(chunk.len() as u64));
    group.sample_size(20);
    group.bench_function("line_by_line", |b| {
        b.iter(|| {
            let mut bytes = 0;
            for line in &lines {
                bytes += masker.mask(black_box(line)).len();
            }
            bytes
        });
    });
    group.bench_function("one_chunk", |b| {
        b.iter(|| masker.mask(black_box(&chunk)).len());
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    mask(&mut criterion);
    criterion.final_summary();
}
