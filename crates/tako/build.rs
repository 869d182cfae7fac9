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
//!
//! On x86_64 Linux with glibc, where Rust links with its own LLD, the
//! functions an idle agent runs (start-up, enrollment, the long poll: about
//! 1,100 of them, 0.7 MB) are placed next to each other
//! (`--symbol-ordering-file`, the list in `agent-idle.order`, made by
//! `bench/agent-order.sh`). The kernel maps 64 KB of code around each page
//! an agent touches, so scattered over the binary those functions kept
//! ~6 MB of it resident; together they keep about what they are. A name the
//! build no longer has is skipped (`--no-warn-symbol-ordering`): a stale
//! list costs memory, never correctness. `TAKO_NO_SYMBOL_ORDERING=1` leaves
//! the option out (for another linker).

// A build script talks to cargo through its standard output.
#![allow(clippy::print_stdout)]

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let ordering_off = std::env::var_os("TAKO_NO_SYMBOL_ORDERING").is_some_and(|v| v != "0");
    if os == "linux" && env == "gnu" && arch == "x86_64" && !ordering_off {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        let order = std::path::Path::new(&dir).join("agent-idle.order");
        if order.is_file() {
            println!(
                "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
                order.display()
            );
            println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
        }
        println!("cargo:rerun-if-changed=agent-idle.order");
    }
    println!("cargo:rerun-if-env-changed=TAKO_NO_SYMBOL_ORDERING");
    println!("cargo:rerun-if-changed=build.rs");
}
