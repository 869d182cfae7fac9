//! Parsing and validating a takofile: the seed example
//! (`examples/seed/takofile.yml`, 2.3 KB: mappings, variables, five steps
//! with conditions, built-ins and scripts) and a generated large one (10
//! mappings, 20 variables, 40 steps, ~12 KB). The router does this twice per
//! push (routing from the default branch, process from the pushed commit).
//! Run with `cargo bench -p tako-takofile --bench parse`.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, Throughput};

const SEED: &str = include_str!("../../../examples/seed/takofile.yml");

/// A large but ordinary takofile.
fn large() -> String {
    let mut text = String::from("Project: Shop\nMappings:\n");
    for n in 0..10 {
        let _ = write!(text, "  - Branch: env{n}\n    Environment: Env{n}\n");
    }
    text.push_str("  - Tag: v*\n    Environment: Production\nVariables:\n");
    for n in 0..20 {
        let _ = write!(
            text,
            "  - Name: Setting{n}\n    Value: \"value {n} for #{{Octopus.Environment.Name}}\"\n    Environments: [Env{}, Env{}]\n",
            n % 10,
            (n + 1) % 10
        );
    }
    text.push_str("Steps:\n");
    for n in 0..40 {
        let _ = write!(
            text,
            "  - Name: Step {n}\n    Environments: [Env{}, Production]\n    Timeout: 5m\n",
            n % 10
        );
        if n % 4 == 3 {
            text.push_str("    Condition: Always\n");
        }
        let _ = write!(
            text,
            "    Run: |\n      echo \"step {n} of #{{Tako.Project.Name}} #{{Tako.Release.Number}}\"\n      ./deploy.sh --setting \"#{{Setting{}}}\" --env \"#{{Octopus.Environment.Name}}\"\n      test -f out/{n}.txt || exit 1\n",
            n % 20
        );
    }
    text
}

fn parse(c: &mut Criterion) {
    let large = large();
    let mut group = c.benchmark_group("takofile_parse_validate");
    for (name, text) in [("seed_2.3KB", SEED), ("large_12KB", large.as_str())] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| tako_takofile::parse("takofile", black_box(text)).is_ok());
        });
    }
    group.finish();
}

fn main() {
    let large = large();
    for text in [SEED, large.as_str()] {
        if let Err(diagnostics) = tako_takofile::parse("takofile", text) {
            panic!("the benchmark's takofile is invalid: {diagnostics}\n{text}");
        }
    }
    let mut criterion = Criterion::default().configure_from_args();
    parse(&mut criterion);
    criterion.final_summary();
}
