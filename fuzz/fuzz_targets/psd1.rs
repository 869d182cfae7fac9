//! Fuzzes the `.psd1` reader: `tako_psd1::parse` and
//! `ModuleManifest::from_text` must answer a value or an error, never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tako_psd1::parse(text);
        let _ = tako_psd1::ModuleManifest::from_text(text);
    }
});
