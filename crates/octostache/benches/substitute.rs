//! Substituting a step's script: a 10 KB bash script referring 400 times to
//! 50 variables (some nested, a few through filters, one `#{if}` and one
//! `#{each}`), as the engine does for every script step
//! (`VariableDictionary::evaluate`). Measured twice: with the dictionary's
//! lookup tree already built (later steps of a deployment) and building it
//! first (the first step). Run with
//! `cargo bench -p tako-octostache --bench substitute`.

use std::fmt::Write as _;
use std::hint::black_box;

use chrono::{Offset, TimeZone, Utc};
use criterion::{BatchSize, Criterion, Throughput};
use tako_octostache::{EvalContext, VariableDictionary};

/// The 50 variables of a deployment: system variables, project settings
/// (some referring to others) and a JSON list.
fn variables() -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = [
        ("Octopus.Project.Name", "Shop"),
        ("Octopus.Environment.Name", "Production"),
        ("Octopus.Release.Number", "1.4.17"),
        ("Octopus.Deployment.Id", "deployments-4711"),
        (
            "Octopus.Release.Notes",
            "- Retry the health check (a1b2c3d)",
        ),
        ("Tako.Project.Name", "#{Octopus.Project.Name}"),
        ("Tako.Environment.Name", "#{Octopus.Environment.Name}"),
        ("Tako.Release.Number", "#{Octopus.Release.Number}"),
        (
            "App.Host",
            "shop-#{Octopus.Environment.Name | ToLower}.example.com",
        ),
        ("App.Url", "https://#{App.Host}:#{App.Port}/"),
        ("App.Port", "8443"),
        ("App.Debug", "False"),
        ("App.Regions", r#"["eu-west-1","eu-central-1","us-east-1"]"#),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut n = 0;
    while vars.len() < 50 {
        vars.push((
            format!("App.Setting{n:02}"),
            format!("value-{n}-for-#{{Octopus.Environment.Name}}"),
        ));
        n += 1;
    }
    vars
}

/// A 10 KB script using the variables.
fn script(names: &[String]) -> String {
    let mut text = String::from(
        "#!/usr/bin/env bash\nset -euo pipefail\n\
         echo \"Deploying #{Tako.Project.Name} #{Tako.Release.Number} to #{Tako.Environment.Name | ToUpper}\"\n\
         #{if App.Debug}set -x#{/if}\n\
         #{each region in App.Regions}echo \"region #{region}\"\n#{/each}\n",
    );
    let mut i = 0;
    while text.len() < 10 * 1024 {
        let a = &names[i % names.len()];
        let b = &names[(i * 7 + 3) % names.len()];
        let _ = writeln!(
            text,
            "deploy_part {i} --name \"#{{{a}}}\" --other \"#{{{b}}}\" --url \"#{{App.Url}}\" # part {i}"
        );
        i += 1;
    }
    text
}

fn context() -> EvalContext {
    EvalContext {
        now_utc: Utc
            .with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
            .single()
            .unwrap_or_default(),
        local_offset: Utc.fix(),
    }
}

fn substitute(c: &mut Criterion) {
    let vars = variables();
    let names: Vec<String> = vars
        .iter()
        .map(|(k, _)| k.clone())
        .filter(|k| k != "App.Regions")
        .collect();
    let template = script(&names);
    let ctx = context();
    let dictionary: VariableDictionary = vars.iter().cloned().collect();
    let first = dictionary
        .evaluate(&template, &ctx)
        .unwrap_or_else(|e| panic!("the benchmark's script evaluates: {e}"));
    assert!(
        first.warnings.is_empty(),
        "the benchmark's script has unknown variables: {:?}",
        first.warnings
    );

    let mut group = c.benchmark_group("substitute_10KB_50_variables");
    group.throughput(Throughput::Bytes(template.len() as u64));
    group.bench_function("evaluate", |b| {
        b.iter(|| dictionary.evaluate(black_box(&template), &ctx).is_ok());
    });
    group.bench_function("build_dictionary_and_evaluate", |b| {
        b.iter_batched(
            || vars.clone(),
            |vars| {
                let dictionary: VariableDictionary = vars.into_iter().collect();
                dictionary.evaluate(black_box(&template), &ctx).is_ok()
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    substitute(&mut criterion);
    criterion.final_summary();
}
