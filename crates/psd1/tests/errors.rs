//! Malformed input: every error names a line, a column and what was expected,
//! and nothing panics.

use tako_psd1::{ManifestError, ModuleManifest, parse};

/// Parses `text`, expecting an error at `line`:`column` whose message
/// contains `needle`.
#[track_caller]
fn fails(text: &str, line: usize, column: usize, needle: &str) {
    let err = match parse(text) {
        Ok(v) => panic!("{text:?} parsed as {v:?}"),
        Err(e) => e,
    };
    assert_eq!(
        (err.line, err.column),
        (line, column),
        "{text:?}: position of {err}"
    );
    assert!(
        err.message.contains(needle),
        "{text:?}: {err} does not mention {needle:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("line {line}, column {column}: {}", err.message)
    );
}

#[test]
fn missing_equals() {
    let text = "@{\n  RootModule = 'x.psm1'\n\n\n\n\nModuleVersion  '1.0'\n}";
    fails(text, 7, 16, "expected `=` after key ModuleVersion");
    let err = parse(text).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 7, column 16: expected `=` after key ModuleVersion, found `'`"
    );
}

#[test]
fn missing_equals_at_end_of_line() {
    fails(
        "@{\r\n  Author\r\n  = 'x'\r\n}",
        2,
        9,
        "expected `=` after key Author, found end of line",
    );
}

#[test]
fn unterminated_hashtable() {
    fails(
        "@{\n  A = 1\n",
        3,
        1,
        "expected `}` to close the hashtable opened at line 1, column 1",
    );
}

#[test]
fn unterminated_array() {
    fails(
        "@{ A = @(\n 'a'\n 'b'",
        3,
        5,
        "expected `)` to close the array opened at line 1, column 8",
    );
}

#[test]
fn unterminated_single_quoted_string() {
    fails("@{\n  Author = 'Jason\n}", 2, 12, "unterminated string");
}

#[test]
fn unterminated_double_quoted_string() {
    fails("@{ A = \"abc`\" }", 1, 8, "expected a closing `\"`");
}

#[test]
fn unterminated_here_string() {
    fails(
        "@{\n  Notes = @'\n  text\n  '@\n}",
        2,
        11,
        "expected a line starting with `'@`",
    );
}

#[test]
fn text_after_here_string_header() {
    fails(
        "@{ Notes = @'text\n'@ }",
        1,
        14,
        "expected a line break after the here-string header",
    );
}

#[test]
fn unterminated_block_comment() {
    fails("@{\n  <# never closed\n  A = 1\n}", 2, 3, "expected `#>`");
}

#[test]
fn subexpression_in_double_quoted_string() {
    fails(
        "@{\n  Path = \"C:\\$(Get-Date)\"\n}",
        2,
        14,
        "subexpression `$(...)` is not allowed",
    );
}

#[test]
fn subexpression_in_expandable_here_string() {
    fails(
        "@{ N = @\"\nok\nnot $(1+1)\n\"@ }",
        3,
        5,
        "subexpression `$(...)` is not allowed",
    );
}

#[test]
fn subexpression_as_value() {
    fails(
        "@{ A = $(Get-Date) }",
        1,
        8,
        "subexpression `$(...)` is not allowed",
    );
}

#[test]
fn variable_other_than_constants() {
    fails(
        "@{ Root = $PSScriptRoot }",
        1,
        11,
        "variable `$PSScriptRoot` is not allowed",
    );
}

#[test]
fn command_instead_of_value() {
    fails(
        "@{\n\tFiles = Get-ChildItem\n}",
        2,
        10,
        "found bare word `Get-ChildItem`: quote strings",
    );
}

#[test]
fn unquoted_version_number() {
    fails(
        "@{ ModuleVersion = 1.0.0 }",
        1,
        20,
        "unquoted version number 1.0.0",
    );
}

#[test]
fn missing_separator_between_entries() {
    fails(
        "@{ A = 'x' B = 'y' }",
        1,
        12,
        "expected a newline, `;` or `}` after the value of key A, found `B`",
    );
}

#[test]
fn missing_value() {
    fails("@{ A = }", 1, 8, "expected a value for key A, found `}`");
    fails("@{ A =\n\n}", 3, 1, "expected a value for key A");
}

#[test]
fn trailing_comma() {
    fails(
        "@{ A = 'x', }",
        1,
        13,
        "expected a value after `,`, found `}`",
    );
    fails("@('x',)", 1, 7, "expected a value after `,`, found `)`");
}

#[test]
fn duplicate_key_is_case_insensitive() {
    fails(
        "@{\n  Author = 'a'\n  AUTHOR = 'b'\n}",
        3,
        3,
        "duplicate key AUTHOR",
    );
}

#[test]
fn casts_and_parentheses() {
    fails("@{ V = [version]'1.0' }", 1, 8, "type casts");
    fails("@{ V = (1 + 2) }", 1, 8, "parenthesised expressions");
}

#[test]
fn operators_after_values() {
    fails(
        "@{ V = 1 + 2 }",
        1,
        10,
        "after the value of key V, found `+`",
    );
}

#[test]
fn two_top_level_values() {
    fails("@{}\n@{}", 2, 1, "expected end of input after the value");
}

#[test]
fn empty_input() {
    fails("", 1, 1, "found end of input");
    fails("\u{feff}  # only a comment\n", 2, 1, "found end of input");
}

#[test]
fn bad_key() {
    fails("@{ = 1 }", 1, 4, "expected a key");
    fails("@{ $k = 1 }", 1, 4, "expected a key");
}

#[test]
fn bad_at_sign() {
    fails(
        "@{ A = @x }",
        1,
        9,
        "expected `{`, `(` or a quote after `@`, found `x`",
    );
}

#[test]
fn bad_numbers() {
    fails("@{ A = 0x }", 1, 10, "expected hex digits");
    fails("@{ A = 12abc }", 1, 10, "after the number 12");
}

#[test]
fn bad_unicode_escape() {
    fails("\"`u{110000}\"", 1, 2, "not a valid character");
    fails("\"`u{zz}\"", 1, 2, "invalid unicode escape");
}

#[test]
fn columns_count_characters_not_bytes() {
    fails("@{ Ä = 'é' X }", 1, 12, "after the value of key Ä");
}

#[test]
fn nesting_is_bounded() {
    for opener in ["@(", "@{A=", ","] {
        let text = opener.repeat(100_000);
        let err = parse(&text).unwrap_err();
        assert!(
            err.message.contains("nesting is deeper than 64 levels"),
            "{err}"
        );
    }
}

#[test]
fn arbitrary_prefixes_never_panic() {
    let text = include_str!("fixtures/Posh-ACME.psd1");
    let chars: Vec<char> = text.chars().collect();
    for end in 0..chars.len() {
        let prefix: String = chars[..end].iter().collect();
        let _ = parse(&prefix);
    }
}

#[test]
fn odd_bytes_never_panic() {
    let pieces = [
        "@{", "}", "@(", ")", "'", "\"", "`", "$", "#", "<#", "#>", "@'", "'@", "@\"", "\"@", "\n",
        "\r", ";", ",", "=", "0x", "1.", "-", "é", "\u{feff}", "`u{", "$(",
    ];
    // A small deterministic generator: every pair and triple of pieces.
    for a in pieces {
        for b in pieces {
            let _ = parse(&format!("{a}{b}"));
            for c in pieces {
                let _ = parse(&format!("{a}{b}{c}"));
                let _ = parse(&format!("@{{ K = {a}{b}{c}"));
            }
        }
    }
}

#[test]
fn manifest_errors() {
    let missing = ModuleManifest::from_text("@{ Author = 'me' }").unwrap_err();
    assert_eq!(
        missing,
        ManifestError::MissingField {
            field: "ModuleVersion".to_owned()
        }
    );
    assert_eq!(
        missing.to_string(),
        "module manifest is missing the required field ModuleVersion"
    );

    let not_table = ModuleManifest::from_text("@('a')").unwrap_err();
    assert_eq!(
        not_table.to_string(),
        "a module manifest must be a hashtable `@{ ... }`, found an array"
    );

    let parse_error = ModuleManifest::from_text("@{\n ModuleVersion '1.0'\n}").unwrap_err();
    assert_eq!(
        parse_error.to_string(),
        "line 2, column 16: expected `=` after key ModuleVersion, found `'`"
    );

    let bad_version = ModuleManifest::from_text("@{ ModuleVersion = 'one' }").unwrap_err();
    assert!(
        matches!(bad_version, ManifestError::InvalidField { ref field, .. } if field == "ModuleVersion")
    );

    let bad_tags = ModuleManifest::from_text(
        "@{ ModuleVersion = '1.0'; PrivateData = @{ PSData = @{ Tags = @('a', @{}) } } }",
    )
    .unwrap_err();
    assert_eq!(
        bad_tags.to_string(),
        "module manifest field PrivateData.PSData.Tags: expected a string or an array of strings, found a hashtable at item 2"
    );

    let bad_required = ModuleManifest::from_text(
        "@{ ModuleVersion = '1.0'; RequiredModules = @(@{ ModuleVersion = '1.0' }) }",
    )
    .unwrap_err();
    assert_eq!(
        bad_required.to_string(),
        "module manifest is missing the required field RequiredModules[0].ModuleName"
    );
}
