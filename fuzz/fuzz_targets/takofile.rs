//! Fuzzes the takofile parser (`tako_takofile::parse`): any text must give a
//! `Takofile` or diagnostics, never a panic, a hang or an allocation blow-up.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tako_takofile::parse("takofile.yml", text);
    }
});
