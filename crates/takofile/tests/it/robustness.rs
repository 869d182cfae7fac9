//! Hostile and broken input never panics and always yields a diagnostic or a
//! plan: garbage, truncations of real takofiles, NUL bytes, deep nesting,
//! huge alias fan-out, long lines.

use crate::fixture;

/// Parses anything; the only requirement is no panic and, on error, at
/// least one error with a sane position.
fn survives(text: &str) {
    match tako_takofile::parse("takofile", text) {
        Ok(_) => {}
        Err(diagnostics) => {
            assert!(diagnostics.errors().count() > 0, "Err without an error");
            for diagnostic in &diagnostics.0 {
                assert!(
                    diagnostic.line >= 1 && diagnostic.column >= 1,
                    "{diagnostic}"
                );
                assert!(!diagnostic.to_string().is_empty());
            }
        }
    }
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % bound.max(1) as u64).unwrap_or(0)
    }
}

fn corpus() -> Vec<String> {
    vec![
        fixture("takofukku/StatusCakeDSC.takofile"),
        fixture("valid/spec-extended.yml"),
        fixture("invalid/steps.yml"),
        fixture("invalid/takofukku-tabs.yml"),
    ]
}

#[test]
fn every_truncation_of_real_takofiles_survives() {
    for text in corpus() {
        for (end, _) in text.char_indices() {
            survives(&text[..end]);
        }
    }
}

#[test]
fn random_mutations_survive() {
    const PIECES: &[&str] = &[
        "\0",
        "\t",
        ":",
        "- ",
        "[",
        "]",
        "{",
        "}",
        "&a ",
        "*a",
        "\"",
        "'",
        "|",
        ">",
        "#",
        "\n",
        "  ",
        "---\n",
        "? ",
        "!!str ",
        "%YAML 1.2\n",
        "\u{feff}",
        "é",
        "\r\n",
        ",",
    ];
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    for text in corpus() {
        for _ in 0..1500 {
            let mut mutated: Vec<char> = text.chars().collect();
            for _ in 0..=rng.below(4) {
                let at = rng.below(mutated.len() + 1);
                match rng.below(3) {
                    0 if at < mutated.len() => {
                        mutated.remove(at);
                    }
                    _ => {
                        let piece = PIECES[rng.below(PIECES.len())];
                        for (offset, c) in piece.chars().enumerate() {
                            mutated.insert(at + offset, c);
                        }
                    }
                }
            }
            survives(&mutated.into_iter().collect::<String>());
        }
    }
}

#[test]
fn garbage_survives() {
    let mut rng = Rng(42);
    for _ in 0..2000 {
        let length = rng.below(200);
        let text: String = (0..length)
            .map(|_| char::from_u32(u32::try_from(rng.below(0x80)).unwrap_or(0)).unwrap_or(' '))
            .collect();
        survives(&text);
    }
    for text in [
        "",
        "\0",
        "\0\0\0",
        "---",
        "...",
        "~",
        "null",
        "[]",
        "{}",
        "- - -",
        ":",
        "? :",
        "Project: \0",
        "Project: x\0",
        "\u{feff}Project: x",
        "&a *a",
        "a: &a\nb: *a\n",
        "Project: &x\n  - *x",
        "!!binary aGVsbG8=",
        "%TAG ! tag:x,2000:\n---\n!a b",
        "Project: x\r\nMappings:\r\n  - Branch: master\r\n    Environment: Production\r\n",
    ] {
        survives(text);
    }
}

#[test]
fn nul_bytes_are_diagnostics() {
    assert!(tako_takofile::parse("takofile", "Project: a\0b\n").is_err());
}

#[test]
fn deep_nesting_is_a_diagnostic() {
    for depth in [65, 1_000, 100_000] {
        let flow = format!("Project: {}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(tako_takofile::parse("takofile", &flow).is_err());
        let block: String = (0..depth.min(2_000))
            .map(|level| format!("{}- \n", "  ".repeat(level)))
            .collect();
        survives(&block);
        let maps: String = (0..depth.min(2_000))
            .map(|level| format!("{}k{level}:\n", " ".repeat(level)))
            .collect();
        survives(&maps);
    }
}

#[test]
fn alias_fan_out_is_a_diagnostic() {
    let mut text = String::from("a0: &a0 [\"lol\"]\n");
    for level in 1..40 {
        let previous = format!("*a{}", level - 1);
        text.push_str(&format!(
            "a{level}: &a{level} [{previous}, {previous}, {previous}]\n"
        ));
    }
    text.push_str("Project: *a39\n");
    let diagnostics = match tako_takofile::parse("takofile", &text) {
        Ok(_) => panic!("alias bomb accepted"),
        Err(diagnostics) => diagnostics,
    };
    assert!(
        diagnostics
            .to_string()
            .contains("aliases expand to too much"),
        "{diagnostics}"
    );

    // Wide rather than deep: one big scalar aliased many times.
    let big = "x".repeat(100_000);
    let mut wide = format!("big: &big \"{big}\"\nlist:\n");
    for _ in 0..100 {
        wide.push_str("  - *big\n");
    }
    assert!(tako_takofile::parse("takofile", &wide).is_err());
}

#[test]
fn huge_input_is_refused_quickly() {
    let text = format!("Project: x\nVersion: \"{}\"\n", "9".repeat(2 << 20));
    let diagnostics = match tako_takofile::parse("takofile", &text) {
        Ok(_) => panic!("huge takofile accepted"),
        Err(diagnostics) => diagnostics,
    };
    assert_eq!(diagnostics.0.len(), 1);
}

/// Regression (reliability corpus): a project name with a NUL byte, an
/// escape sequence or a `/` was accepted, and the server then auto-registered
/// a project under a name its own API refuses.
#[test]
fn a_project_name_with_control_characters_or_a_slash_is_refused() {
    for name in [
        "\"a\\0b\"",
        "\"\\e[31mred\"",
        "\"line\\nbreak\"",
        "../../etc",
    ] {
        let diagnostics = crate::invalid(&format!(
            "Project: {name}\nSteps:\n  - Name: s\n    Run: echo\n"
        ));
        assert!(
            diagnostics
                .to_string()
                .contains("Project must not contain control characters or /"),
            "{name}: {diagnostics}"
        );
    }
}

/// Regression (reliability corpus): a NUL byte got the hint about tabs,
/// because "unprintable" contains "tab".
#[test]
fn a_nul_byte_is_not_called_a_tab() {
    let diagnostics = crate::invalid("Project: a\0b\nSteps:\n  - Name: s\n    Run: echo\n");
    let text = diagnostics.to_string();
    assert!(text.contains("unprintable character"), "{text}");
    assert!(!text.contains("tabs"), "{text}");
    assert!(text.contains("control character"), "{text}");
    // Tabs still get their hint.
    let tabs = crate::invalid("Project: x\nSteps:\n\t- Name: a\n").to_string();
    assert!(tabs.contains("indent with spaces"), "{tabs}");
}
