//! Fuzzes the substitution engine: the input is split into variables and a
//! template (`name=value` lines, then a line `---`, then the template), and
//! `VariableDictionary::evaluate` must never panic or loop.

#![no_main]

use chrono::TimeZone;
use libfuzzer_sys::fuzz_target;
use tako_octostache::{EvalContext, VariableDictionary};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (head, template) = text.split_once("\n---\n").unwrap_or(("", text));
    let mut variables = VariableDictionary::new();
    variables.set("Name", "value");
    variables.set("List", "a,b,c");
    variables.set("Json", r#"{"a": [1, {"b": "c"}], "d": 2}"#);
    for line in head.lines().take(64) {
        if let Some((name, value)) = line.split_once('=') {
            variables.set(name, value);
        }
    }
    let Some(now_utc) = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).single() else {
        return;
    };
    let Some(local_offset) = chrono::FixedOffset::east_opt(3600) else {
        return;
    };
    let ctx = EvalContext {
        now_utc,
        local_offset,
    };
    let _ = variables.evaluate(template, &ctx);
    // Every variable, evaluated by name (their values are templates too).
    for name in head
        .lines()
        .take(8)
        .filter_map(|l| l.split_once('='))
        .map(|(n, _)| n)
    {
        let _ = variables.get(name, &ctx);
    }
});
