//! Link options for the `tako` binary.
//!
//! On Linux with glibc the binary's relative relocations are packed
//! (`-z pack-relative-relocs`, DT_RELR): as a position-independent
//! executable it carries ~75,000 of them, 1.7 MB of `.rela.dyn` that the
//! dynamic loader reads at every start, so each `tako` process (an idle
//! agent above all) kept those pages resident. Packed, they take a few
//! kilobytes. The loader needs glibc 2.36 or newer; an older linker or
//! glibc leaves the option out (GNU ld ignores it when glibc lacks
//! `GLIBC_ABI_DT_RELR`). Measured in docs/benchmarks.md ("agent idle RSS").

// A build script talks to cargo through its standard output.
#![allow(clippy::print_stdout)]

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
