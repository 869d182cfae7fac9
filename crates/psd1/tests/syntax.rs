//! The accepted syntax, construct by construct.

use tako_psd1::{Hashtable, Value, parse};

fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

fn i(n: i64) -> Value {
    Value::Integer(n)
}

fn arr(items: Vec<Value>) -> Value {
    Value::Array(items)
}

fn table(entries: Vec<(&str, Value)>) -> Value {
    Value::Hashtable(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<Hashtable>(),
    )
}

fn ok(text: &str) -> Value {
    parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

#[test]
fn separators_newlines_and_semicolons() {
    let expected = table(vec![("A", i(1)), ("B", i(2)), ("C", i(3))]);
    assert_eq!(ok("@{ A = 1; B = 2; C = 3 }"), expected);
    assert_eq!(ok("@{\nA = 1\nB = 2\n\n\nC = 3\n}"), expected);
    assert_eq!(ok("@{A=1;B=2\nC=3;}"), expected);
    assert_eq!(ok("@{ ;; A = 1 ;\n; B = 2; C = 3 ;; }"), expected);
    assert_eq!(ok("@{}"), table(vec![]));
    assert_eq!(ok("@{\n}"), table(vec![]));
}

#[test]
fn keys_bare_and_quoted_case_insensitive() {
    let v = ok("@{ 'Quoted Key' = 1; \"Double\" = 2; Dashed-Key = 3; under_score = 4 }");
    let t = v.as_hashtable().unwrap();
    assert_eq!(t.get("quoted key"), Some(&i(1)));
    assert_eq!(t.get("DOUBLE"), Some(&i(2)));
    assert_eq!(t.get("dashed-key"), Some(&i(3)));
    assert_eq!(t.get("Under_Score"), Some(&i(4)));
    assert_eq!(
        t.keys().collect::<Vec<_>>(),
        ["Quoted Key", "Double", "Dashed-Key", "under_score"]
    );
}

#[test]
fn nested_hashtables() {
    let v = ok("@{ PrivateData = @{ PSData = @{ Tags = @('a') } } }");
    let tags = v
        .as_hashtable()
        .and_then(|t| t.get("privatedata"))
        .and_then(Value::as_hashtable)
        .and_then(|t| t.get("psdata"))
        .and_then(Value::as_hashtable)
        .and_then(|t| t.get("TAGS"));
    assert_eq!(tags, Some(&arr(vec![s("a")])));
}

#[test]
fn arrays() {
    assert_eq!(ok("@()"), arr(vec![]));
    assert_eq!(ok("@(\n)"), arr(vec![]));
    assert_eq!(ok("@('a', 'b')"), arr(vec![s("a"), s("b")]));
    assert_eq!(ok("@(\n  'a'\n  'b'\n)"), arr(vec![s("a"), s("b")]));
    assert_eq!(
        ok("@('a',\n 'b'\n 'c'; 'd')"),
        arr(vec![s("a"), s("b"), s("c"), s("d")])
    );
    assert_eq!(ok("@(1)"), arr(vec![i(1)]));
    // `@()` enumerates its statements one level, like PowerShell.
    assert_eq!(ok("@(@(1, 2))"), arr(vec![i(1), i(2)]));
    assert_eq!(ok("@(@(1, 2), 3)"), arr(vec![arr(vec![i(1), i(2)]), i(3)]));
    assert_eq!(
        ok("@(@{ A = 1 }, @{ A = 2 })"),
        arr(vec![table(vec![("A", i(1))]), table(vec![("A", i(2))])])
    );
}

#[test]
fn bare_comma_lists_and_unary_comma() {
    assert_eq!(
        ok("@{ F = 'a', 'b' }"),
        table(vec![("F", arr(vec![s("a"), s("b")]))])
    );
    assert_eq!(
        ok("@{ F = 'a',\n      'b' }"),
        table(vec![("F", arr(vec![s("a"), s("b")]))])
    );
    assert_eq!(ok("@{ F = ,'a' }"), table(vec![("F", arr(vec![s("a")]))]));
    assert_eq!(ok("'a','b'"), arr(vec![s("a"), s("b")]));
}

#[test]
fn single_quoted_strings() {
    assert_eq!(ok("'it''s'"), s("it's"));
    assert_eq!(ok("''"), s(""));
    assert_eq!(ok("'a `n $b \"c\"'"), s("a `n $b \"c\""));
    assert_eq!(ok("'line1\r\nline2'"), s("line1\nline2"));
    assert_eq!(ok("\u{2018}smart\u{2019}"), s("smart"));
}

#[test]
fn double_quoted_strings() {
    assert_eq!(ok(r#""a`nb`tc""#), s("a\nb\tc"));
    assert_eq!(
        ok(r#""say `"hi`" and ""bye""""#),
        s("say \"hi\" and \"bye\"")
    );
    assert_eq!(ok(r#""back``tick""#), s("back`tick"));
    assert_eq!(
        ok(r#""`0`a`b`e`f`r`v""#),
        s("\0\u{7}\u{8}\u{1b}\u{c}\r\u{b}")
    );
    assert_eq!(ok(r#""`u{1F600} `u{e9}""#), s("\u{1F600} \u{e9}"));
    assert_eq!(ok(r#""`q`'""#), s("q'"));
    assert_eq!(
        ok(r#""cost: $price, $env:HOME and `$(x)""#),
        s("cost: $price, $env:HOME and $(x)")
    );
    assert_eq!(ok(r#""$""#), s("$"));
    assert_eq!(ok("\u{201C}smart\u{201D}"), s("smart"));
}

#[test]
fn here_strings() {
    assert_eq!(
        ok("@'\nline 1\n  'quoted' \"x\" $y\nline 3\n'@"),
        s("line 1\n  'quoted' \"x\" $y\nline 3")
    );
    assert_eq!(ok("@'\n'@"), s(""));
    assert_eq!(ok("@'\n\n'@"), s(""));
    assert_eq!(ok("@'\n\n\n'@"), s("\n"));
    assert_eq!(ok("@'   \r\nwindows\r\nlines\r\n'@"), s("windows\nlines"));
    assert_eq!(
        ok("@\"\ntab`there \"quotes\" `$(no)\n\"@"),
        s("tab\there \"quotes\" $(no)")
    );
    // The closing marker only counts at the start of a line.
    assert_eq!(ok("@'\na '@ b\n'@"), s("a '@ b"));
    assert_eq!(
        ok("@{ Notes = @'\nx\n'@; Other = 1 }"),
        table(vec![("Notes", s("x")), ("Other", i(1))])
    );
}

#[test]
fn constants() {
    assert_eq!(ok("$true"), Value::Bool(true));
    assert_eq!(ok("$FALSE"), Value::Bool(false));
    assert_eq!(ok("$Null"), Value::Null);
}

#[test]
fn numbers() {
    assert_eq!(ok("42"), i(42));
    assert_eq!(ok("-7"), i(-7));
    assert_eq!(ok("+7"), i(7));
    assert_eq!(ok("0x1F"), i(31));
    assert_eq!(ok("0xFFFFFFFF"), i(-1));
    assert_eq!(ok("0x100000000"), i(4_294_967_296));
    assert_eq!(ok("10l"), i(10));
    assert_eq!(ok("2kb"), i(2048));
    assert_eq!(ok("1MB"), i(1_048_576));
    assert_eq!(ok("9223372036854775807"), i(i64::MAX));
    for (text, value) in [
        ("1.0", 1.0),
        ("-2.5", -2.5),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("1.5kb", 1536.0),
        ("3d", 3.0),
        ("9223372036854775808", 9_223_372_036_854_775_808.0),
    ] {
        match ok(text) {
            Value::Number(n) => {
                assert_eq!(n.as_str(), text);
                assert!((n.to_f64() - value).abs() < 1e-9, "{text}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn comments_everywhere() {
    let text = "# header\n<# block\n   comment #>\n@{ # after brace\n  A = <# inline #> 1 # trailing\n  <# before key #> B = @( # in array\n    'x' # item\n    <# multi\n    line #>\n    'y'\n  )\n} # after\n# end";
    assert_eq!(
        ok(text),
        table(vec![("A", i(1)), ("B", arr(vec![s("x"), s("y")]))])
    );
}

#[test]
fn bom_crlf_and_continuations() {
    assert_eq!(
        ok("\u{feff}@{\r\n  A = 1\r\n  B = 'x',`\r\n  'y'\r\n}\r\n"),
        table(vec![("A", i(1)), ("B", arr(vec![s("x"), s("y")]))])
    );
    assert_eq!(ok("@{ A = `\n 1 }"), table(vec![("A", i(1))]));
    assert_eq!(
        ok("@{\rA = 1\rB = 2\r}"),
        table(vec![("A", i(1)), ("B", i(2))])
    );
}

#[test]
fn value_on_the_line_after_equals() {
    assert_eq!(ok("@{ A =\n  'x' }"), table(vec![("A", s("x"))]));
}

#[test]
fn deep_but_bounded_nesting_is_fine() {
    let depth = 60;
    let text = format!("{}1{}", "@(".repeat(depth), ")".repeat(depth));
    assert!(parse(&text).is_ok());
}
