//! Table-driven tests of the Octostache language. Each row names where its
//! expectation comes from: Octostache's own tests (`source/Octostache.Tests/*`,
//! e.g. `UsageFixture`, `FiltersFixture`), Octopus's documentation pages
//! (`docs: variable-filters`, `docs: variable-substitutions`), or Tako's spec
//! (`spec: octopus-script-api.md §4.4`).

use chrono::{FixedOffset, TimeZone, Utc};
use tako_octostache::{EvalContext, EvaluationError, VariableDictionary, is_truthy};

/// A fixed clock: 2016-11-02T22:53:11.0946448Z, server offset +10:00, so that
/// `NowDate` is the `2016-11-03T08:53:11.0946448` of docs: variable-filters.
fn ctx() -> EvalContext {
    let now = Utc
        .with_ymd_and_hms(2016, 11, 2, 22, 53, 11)
        .single()
        .and_then(|t| t.checked_add_signed(chrono::Duration::nanoseconds(94_644_800)));
    EvalContext {
        now_utc: now.unwrap_or_default(),
        local_offset: FixedOffset::east_opt(10 * 3600)
            .unwrap_or(FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!())),
    }
}

fn dict(vars: &[(&str, &str)]) -> VariableDictionary {
    vars.iter().map(|(k, v)| (*k, *v)).collect()
}

#[track_caller]
fn check(template: &str, vars: &[(&str, &str)], expected: &str) {
    let got = dict(vars).evaluate(template, &ctx());
    match got {
        Ok(r) => assert_eq!(
            r.text, expected,
            "template {template:?} with {vars:?} (warnings {:?})",
            r.warnings
        ),
        Err(e) => panic!("template {template:?} failed: {e}"),
    }
}

/// Variables of a table row.
type Vars<'a> = &'a [(&'a str, &'a str)];

/// Runs a table: (template, variables, expected).
#[track_caller]
fn table(rows: &[(&str, Vars<'_>, &str)]) {
    for (t, v, e) in rows {
        check(t, v, e);
    }
}

#[track_caller]
fn warnings(template: &str, vars: &[(&str, &str)]) -> Vec<String> {
    match dict(vars).evaluate(template, &ctx()) {
        Ok(r) => r.warnings.into_iter().map(|w| w.message).collect(),
        Err(e) => panic!("template {template:?} failed: {e}"),
    }
}

const NONE: &[(&str, &str)] = &[];

#[test]
fn basic_substitution() {
    table(&[
        // UsageFixture.BasicExamples
        ("#{Foo}", &[("Foo", "Bar")], "Bar"),
        ("#{Foo}", &[("foo", "Bar")], "Bar"),
        ("#{Foo}", &[("Foo", "#{Bar}"), ("Bar", "Baz")], "Baz"),
        (
            "#{Foo}",
            &[("Foo", "#{Bar | ToLower}"), ("Bar", "Baz")],
            "baz",
        ),
        ("#{Foo Bar Jazz}", &[("Foo Bar Jazz", "Bar")], "Bar"),
        (
            "#{Foo|ToUpper}",
            &[("Foo", "#{Bar | ToLower}"), ("Bar", "Baz")],
            "BAZ",
        ),
        ("#{Foo | ToUpper}", &[("Foo", "baz")], "BAZ"),
        ("##{Foo}", &[("foo", "Bar")], "#{Foo}"),
        // UsageFixture.AwkwardCharacters
        ("#{a/b}", &[("a/b", "Foo")], "Foo"),
        ("#{a~b}", &[("a~b", "Foo")], "Foo"),
        ("#{(abc)}", &[("(abc)", "Foo")], "Foo"),
        ("#{a@b:c-d_e}", &[("a@b:c-d_e", "Foo")], "Foo"),
        // ConditionalsFixture / IterationFixture whitespace rows: names are trimmed
        ("#{ Foo }", &[("Foo", "x")], "x"),
        ("#{  Foo  }", &[("Foo", "x")], "x"),
        // UsageFixture.NamedIndexersAreSupported
        (
            "#{Octopus.Action[Package A].Name}",
            &[("Octopus.Action[Package A].Name", "Package A")],
            "Package A",
        ),
        (
            "#{octopus.action[package a].name}",
            &[("Octopus.Action[Package A].Name", "A")],
            "A",
        ),
        // UsageFixture.IndexingWithASymbolIsSupported
        (
            "#{Octopus.Step[#{action.StepName}].Status.Code}",
            &[
                ("action.StepName", "Step 1"),
                ("Octopus.Step[Step 1].Status.Code", "Running"),
            ],
            "Running",
        ),
        // spec: variables.md §3 nested
        (
            "#{Octopus.Action[#{StepName}].Output.Version}",
            &[
                ("StepName", "Build"),
                ("Octopus.Action[Build].Output.Version", "1.2.3"),
            ],
            "1.2.3",
        ),
        // UsageFixture.DocumentationIntroduction
        (
            "#{Url}/foo",
            &[
                ("Server", "Web01"),
                ("Port", "10933"),
                ("Url", "http://#{Server | ToLower}:#{Port}"),
            ],
            "http://web01:10933/foo",
        ),
        // spec: octopus-script-api.md §4.1 (values are evaluated)
        (
            "#{DeploymentInfoText}",
            &[
                (
                    "DeploymentInfoText",
                    "#{Octopus.Project.Name} release #{Octopus.Release.Number} to #{Octopus.Environment.Name} (#{Octopus.Machine.Name})",
                ),
                ("Octopus.Project.Name", "Hello-World"),
                ("Octopus.Release.Number", "1.2.3"),
                ("Octopus.Environment.Name", "Production"),
                ("Octopus.Machine.Name", "web01"),
            ],
            "Hello-World release 1.2.3 to Production (web01)",
        ),
        // Later sets replace earlier ones, case-insensitively.
        ("#{X}", &[("X", "1"), ("x", "2")], "2"),
    ]);
}

#[test]
fn hashes_and_escapes() {
    table(&[
        // UsageFixture.DoubleHashEscapesToken / TripleHashResolvesToSinglePlusToken
        ("##{foo}", &[("foo", "Abc")], "#{foo}"),
        ("###{foo}", &[("foo", "Abc")], "#Abc"),
        // spec §4.3: ###{X} with X undefined is # followed by the echo
        ("###{X}", NONE, "##{X}"),
        // UsageFixture.StandaloneHashesAreText / EvenBlockHashesAreText / OddBlockHashesAreText
        ("# ## ###", NONE, "# ## ###"),
        ("###### hello", NONE, "###### hello"),
        ("####### world", NONE, "####### world"),
        ("#", NONE, "#"),
        ("a#b", NONE, "a#b"),
        // spec: octopus-script-api.md §4.4 item 4
        (
            "echo ##{Octopus.Action[$stepName].Output.Json}",
            NONE,
            "echo #{Octopus.Action[$stepName].Output.Json}",
        ),
    ]);
}

#[test]
fn echo_rules() {
    table(&[
        // UsageFixture.MissingTokenErrorExamples / UnmatchedSubstitutionsAreEchoed
        ("#{Foo}", NONE, "#{Foo}"),
        (
            "#{Foo}#{Jazz}",
            &[("Foo", "#{Bar}"), ("Bar", "Baz")],
            "Baz#{Jazz}",
        ),
        (
            "#{each a in Action}#{a.Size}#{/each}",
            &[("Action[x].Name", "Baz"), ("Action[y].Name", "Baz")],
            "#{a.Size}#{a.Size}",
        ),
        // FiltersFixture.UnmatchedSubstitutionsAreEchoed
        ("#{foo | ToUpper}", NONE, "#{foo | ToUpper}"),
        ("#{Foo.Bar | HtmlEscape}", NONE, "#{Foo.Bar | HtmlEscape}"),
        ("#{Foo.Bar | Markdown}", NONE, "#{Foo.Bar | Markdown}"),
        // FiltersFixture.UnknownFiltersAreEchoed / UnknownFiltersWithOptionsAreEchoed
        (
            "#{Foo | ToBazooka}",
            &[("Foo", "Abc")],
            "#{Foo | ToBazooka}",
        ),
        (
            "#{Foo | ToBazooka 6}",
            &[("Foo", "Abc")],
            "#{Foo | ToBazooka 6}",
        ),
        // The echo is re-rendered from the parse tree (spec §4.3: whitespace normalised)
        ("#{ Foo|ToUpper }", NONE, "#{Foo | ToUpper}"),
        ("#{  Undefined  }", NONE, "#{Undefined}"),
        // UsageFixture.EmptyValuesAreEchoed
        ("#{ }", &[("Foo", "Value")], "#{ }"),
        ("#{}", &[("Foo", "Value")], "#{}"),
        // UsageFixture.ParseErrorExamples: text that does not parse is unchanged
        ("#{Foo", &[("Foo", "Bar")], "#{Foo"),
        ("#{Fo[o}", &[("Foo", "Bar"), ("Fo[o]", "Bar")], "#{Fo[o}"),
        (
            "#{each a in Action}",
            &[("Action[a]", "One")],
            "#{each a in Action}",
        ),
        // UsageFixture.AbleToContinueWhenAParsingErrorIsHitAtEndOfString
        (
            "i=\"#{Web.Root}\";console.log(i);var l=\"#{Wsf.Host}\"\n;a=function(e){return\"#{",
            &[
                ("Web.Root", "Subbed.Web.Root"),
                ("Wsf.Host", "Subbed.Wsf.Host"),
            ],
            "i=\"Subbed.Web.Root\";console.log(i);var l=\"Subbed.Wsf.Host\"\n;a=function(e){return\"#{",
        ),
        // An unclosed #{if} is a substitution of the variable "if X" (echoed)
        ("#{if X}a", &[("X", "1")], "#{if X}a"),
        ("#{/if}", NONE, "#{/if}"),
        // docs: variable-filters "Differences from regular bindings"
        (
            "Server=#{if DatabaseServer}#{DatabaseServer}#{/if};",
            NONE,
            "Server=;",
        ),
    ]);
}

#[test]
fn continue_on_error_webpack() {
    // UsageFixture.AbleToContinueWhenAParsingErrorIsHit
    let input = r##"a=function(e){return"#{"===e.substr(0,2)?void 0:e},i="#{Web.Root}";console.log(i);var l="#{Wsf.Host}"
;console.log(l);var c="#{Web.Site.Url[A]}",u=a(c)||"http://localhost.com/apps/api";"##;
    let expected = r##"a=function(e){return"#{"===e.substr(0,2)?void 0:e},i="Subbed.Web.Root";console.log(i);var l="Subbed.Wsf.Host"
;console.log(l);var c="Subbed.Web.Site.A",u=a(c)||"http://localhost.com/apps/api";"##;
    check(
        input,
        &[
            ("Web.Site.Url[A]", "Subbed.Web.Site.A"),
            ("Web.Root", "Subbed.Web.Root"),
            ("Wsf.Host", "Subbed.Wsf.Host"),
        ],
        expected,
    );
}

#[test]
fn community_template_cases() {
    // spec: octopus-script-api.md §4.4 item 1 (supabase): `"#{"*)` is not a token
    // and must survive byte-for-byte; undefined parameters stay literal.
    let supabase = "case \"$ARCH\" in\n  \"#{\"*) ARCH=\"default\" ;;\nesac\nexport REF=\"#{SupabaseProjectRef}\"\necho \"${arch}\" #{Name}\n";
    check(
        supabase,
        &[("Name", "n")],
        &supabase.replace("#{Name}", "n"),
    );
    check(supabase, NONE, supabase);
    // item 2 (github-create-repo): a symbol with a string index, unresolved, echoed unchanged
    let python = "repo = '#{Octopus.Action[' + get_octopusvariable_quiet('Octopus.Step.Name') + '].Output.NewRepo}'\n";
    check(python, &[("Octopus.Step.Name", "x")], python);
    let python_nl = "x = '#{Octopus.Action[' +\n    get_octopusvariable_quiet('Octopus.Step.Name') + '].Output.NewRepo}'";
    check(python_nl, NONE, python_nl);
    // item 3 (opslevel): an empty [] index never resolves, the block renders empty
    check(
        "a#{if Octopus.Release.Package[].Commits}b#{/if}c",
        NONE,
        "ac",
    );
    check("a#{if Octopus.Release.Package}b#{/if}c", NONE, "ac");
    // item 4 (github-verify-attestation)
    check(
        "#{Octopus.Deployment.Id | ToLower}",
        &[("Octopus.Deployment.Id", "Deployments-12")],
        "deployments-12",
    );
    // item 5 (cassandra): an unset port is echoed
    check(
        "port=#{Cassandra.Server.Port}",
        NONE,
        "port=#{Cassandra.Server.Port}",
    );
}

#[test]
fn conditionals() {
    let v: &[(&str, &str)] = &[
        ("Result", "result"),
        ("Truthy", "true"),
        ("ElseResult", "elseresult"),
    ];
    table(&[
        // ConditionalsFixture.ConditionalIsSupported and whitespace rows
        ("#{if Truthy}#{Result}#{/if}", v, "result"),
        ("#{ if Truthy}#{Result}#{/if}", v, "result"),
        ("#{if Truthy }#{Result}#{/if}", v, "result"),
        ("#{ if Truthy  }#{Result}#{/if}", v, "result"),
        ("#{if  Truthy}#{Result}#{/if}", v, "result"),
        ("#{if Truthy  == \"true\"}#{Result}#{/if}", v, "result"),
        ("#{if Truthy  != \"false\"}#{Result}#{/if}", v, "result"),
        // ConditionalsFixture.ConditionalUnlessIsSupported
        (
            "#{unless Truthy}#{Result}#{/unless}",
            &[("Result", "result"), ("Truthy", "false")],
            "result",
        ),
        ("#{unless Truthy}#{Result}#{else}no#{/unless}", v, "no"),
        // ConditionalsFixture.ConditionalToOtherDictValueIsSupported
        (
            "#{if Octopus == Compare}#{Result}#{/if}",
            &[
                ("Result", "result"),
                ("Octopus", "octopus"),
                ("Compare", "octopus"),
            ],
            "result",
        ),
        // ConditionalsFixture.ConditionalToStringIsSupported / NegationIsSupported
        (
            "#{if Octopus == \"octopus\"}#{Result}#{/if}",
            &[("Result", "result"), ("Octopus", "octopus")],
            "result",
        ),
        (
            "#{if Octopus != \"software\"}#{Result}#{/if}",
            &[("Result", "result")],
            "result",
        ),
        // literal on the left (ConditionalToken.cs example)
        (
            "#{if \"octopus\" == Octopus}yes#{/if}",
            &[("Octopus", "octopus")],
            "yes",
        ),
        // comparisons are case-sensitive; a missing variable compares as ""
        ("#{if A == \"X\"}yes#{else}no#{/if}", &[("A", "x")], "no"),
        ("#{if Missing == \"\"}empty#{/if}", NONE, "empty"),
        ("#{if Missing == Other}same#{/if}", NONE, "same"),
        // ConditionalsFixture.NestedConditionalsAreSupported
        (
            "#{if Truthy}#{if Fooey==\"foo\"}#{Result}#{/if}#{/if}",
            &[("Result", "result"), ("Truthy", "true"), ("Fooey", "foo")],
            "result",
        ),
        // ConditionalsFixture.ElseIsSupportedTrue / False / NestIfInElse
        (
            "#{if Truthy}#{Result}#{else}#{ElseResult}#{/if}",
            v,
            "result",
        ),
        (
            "#{if Truthy}#{Result}#{else}#{ElseResult}#{/if}",
            &[
                ("Result", "result"),
                ("ElseResult", "elseresult"),
                ("Truthy", "false"),
            ],
            "elseresult",
        ),
        (
            "#{if Truthy}#{Result}#{else}#{if Fooey==\"foo\"}#{ElseResult}#{/if}#{/if}",
            &[
                ("Result", "result"),
                ("ElseResult", "elseresult"),
                ("Fooey", "foo"),
                ("Truthy", "false"),
            ],
            "elseresult",
        ),
        // elseif (TemplateParser.cs ElseIf clauses)
        (
            "#{if A}a#{elseif B}b#{elseif C}c#{else}d#{/if}",
            &[("B", "1")],
            "b",
        ),
        (
            "#{if A}a#{elseif B}b#{elseif C}c#{else}d#{/if}",
            &[("C", "yes")],
            "c",
        ),
        ("#{if A}a#{elseif B}b#{elseif C}c#{else}d#{/if}", NONE, "d"),
        ("#{if A}a#{elseif B == \"x\"}b#{/if}", &[("B", "x")], "b"),
        // filters in conditions (ConditionalToken.cs example)
        (
            "#{if X | Contains \"y\"}yes#{else}no#{/if}",
            &[("X", "xyz")],
            "yes",
        ),
        (
            "#{if X | Contains \"y\"}yes#{else}no#{/if}",
            &[("X", "abc")],
            "no",
        ),
        (
            "#{if Status | ToLower | StartsWith \"cool\"}cool#{/if}",
            &[("Status", "COOLER")],
            "cool",
        ),
        (
            "#{if X | ToLower == \"abc\"}yes#{/if}",
            &[("X", "ABC")],
            "yes",
        ),
        // truthiness: docs/spec §4.3
        ("#{if V}t#{else}f#{/if}", &[("V", "False")], "f"),
        ("#{if V}t#{else}f#{/if}", &[("V", " no ")], "f"),
        ("#{if V}t#{else}f#{/if}", &[("V", "0")], "f"),
        ("#{if V}t#{else}f#{/if}", &[("V", "")], "f"),
        ("#{if V}t#{else}f#{/if}", &[("V", "00")], "t"),
        ("#{if V}t#{else}f#{/if}", &[("V", "True")], "t"),
        ("#{if V}t#{else}f#{/if}", NONE, "f"),
        // values are evaluated before testing
        (
            "#{if V}t#{else}f#{/if}",
            &[("V", "#{W}"), ("W", "false")],
            "f",
        ),
        // JsonFixture.JsonEvaluatesConditionalsWithEscapes
        (
            "{\"Bar\":\"#{if Foo == \\\"test text\\\"}Blaa#{/if}\"}",
            &[("Foo", "test text")],
            "{\"Bar\":\"Blaa\"}",
        ),
    ]);
}

#[test]
fn iteration() {
    let actions: &[(&str, &str)] = &[
        ("Octopus.Action[Package A].Name", "A"),
        ("Octopus.Action[Package B].Name", "B"),
        ("Octopus.Action[].Name", "Blank"),
    ];
    table(&[
        // IterationFixture.IterationOverAnEmptyCollectionIsFine
        ("Ok#{each nothing in missing}#{nothing}#{/each}", NONE, "Ok"),
        // IterationFixture.SimpleIterationIsSupported and its whitespace rows
        (
            "#{each a in Octopus.Action}#{a}-#{a.Name}#{/each}",
            actions,
            "Package A-APackage B-B-Blank",
        ),
        (
            "#{ each a in Octopus.Action}#{a}-#{a.Name}#{/each}",
            actions,
            "Package A-APackage B-B-Blank",
        ),
        (
            "#{each  a in Octopus.Action}#{a}-#{a.Name}#{/each}",
            actions,
            "Package A-APackage B-B-Blank",
        ),
        (
            "#{each a  in Octopus.Action}#{a}-#{a.Name}#{/each}",
            actions,
            "Package A-APackage B-B-Blank",
        ),
        (
            "#{each a in  Octopus.Action}#{a}-#{a.Name}#{/each}",
            actions,
            "Package A-APackage B-B-Blank",
        ),
        (
            "#{each a in Octopus.Action  }#{a  }-#{a.Name}#{/each}",
            actions,
            "Package A-APackage B-B-Blank",
        ),
        // IterationFixture.NestedIterationIsSupported
        (
            "#{each a in Octopus.Action}#{each tr in a.TargetRoles}#{a.Name}#{tr}#{/each}#{/each}",
            &[
                ("Octopus.Action[Package A].Name", "A"),
                ("Octopus.Action[Package A].TargetRoles", "a,b"),
                ("Octopus.Action[Package B].Name", "B"),
                ("Octopus.Action[Package B].TargetRoles", "c"),
                ("Octopus.Action[].Name", "Z"),
                ("Octopus.Action[].TargetRoles", "y"),
            ],
            "AaAbBcZy",
        ),
        // IterationFixture.RecursiveIterationIsSupported
        (
            "#{each a in Octopus.Action}#{a.Name}#{/each}",
            &[
                ("PackageA_Name", "A"),
                ("PackageB_Name", "B"),
                ("PackageC_Name", "C"),
                ("Octopus.Action[Package A].Name", "#{PackageA_Name}"),
                ("Octopus.Action[Package B].Name", "#{PackageB_Name}"),
                ("Octopus.Action[].Name", "#{PackageC_Name}"),
            ],
            "ABC",
        ),
        // IterationFixture.ScopedSymbolIndexerInIterationIsSupported
        (
            "#{each action in Octopus.Action}#{if Octopus.Step[#{action.StepName}].Status != \"Skipped\"}#{Octopus.Step[#{action.StepName}].Details}#{/if}#{/each}",
            &[
                ("Octopus.Action[Action 1].StepName", "Step 1"),
                ("Octopus.Action[Action 2].StepName", "Step 2"),
                ("Octopus.Step[Step 1].Details", "Step 1 Details"),
                ("Octopus.Step[Step 2].Details", "Step 2 Details"),
                ("Octopus.Step[Step 1].Status", "Skipped"),
                ("Octopus.Step[Step 2].Status", "Running"),
            ],
            "Step 2 Details",
        ),
        // UsageFixture.UnscopedIndexerInIterationIsSupported
        (
            "#{each action in Octopus.Action}#{if Octopus.Step[#{SomeOtherVariable}].Status == \"Skipped\"}#{Octopus.Step[#{SomeOtherVariable}].Details}#{/if}#{/each}",
            &[
                ("Octopus.Action[Action 1].StepName", "Step 1"),
                ("Octopus.Action[Action 2].StepName", "Step 2"),
                ("Octopus.Step[OtherVariableValue].Details", "Octopus"),
                ("Octopus.Step[OtherVariableValue].Status", "Skipped"),
                ("SomeOtherVariable", "OtherVariableValue"),
            ],
            "OctopusOctopus",
        ),
        // IterationFixture.IterationSpecialVariablesAreSupported
        (
            "#{each a in Numbers}#{a} First:#{Octopus.Template.Each.First} Last:#{Octopus.Template.Each.Last} Index:#{Octopus.Template.Each.Index}, #{/each}",
            &[("Numbers", "A,B,C")],
            "A First:True Last:False Index:0, B First:False Last:False Index:1, C First:False Last:True Index:2, ",
        ),
        // IterationFixture.NestedIndexIterationIsSupported
        (
            "#{each a in Octopus.Action.Package}#{a}: #{a.Name} #{/each}",
            &[
                ("Octopus.Action.Package[container[0]].Name", "A"),
                ("Octopus.Action.Package[container[1]].Name", "B"),
                ("Octopus.Action.Package[container[2]].Name", "C"),
            ],
            "container[0]: A container[1]: B container[2]: C ",
        ),
        // IterationFixture.KeyIsAvailable* / BareIterationVariableIsUnaffectedByTheKeyBinding
        (
            "#{each x in Simple}[#{x.Key}]#{/each}",
            &[("Simple[a]", "5"), ("Simple[b]", "7")],
            "[a][b]",
        ),
        (
            "#{each x in Simple}[#{x}]#{/each}",
            &[("Simple[a]", "5"), ("Simple[b]", "7")],
            "[5][7]",
        ),
        (
            "#{each x in NoDirect}[#{x}]#{/each}",
            &[("NoDirect[a].Name", "Alpha"), ("NoDirect[b].Name", "Beta")],
            "[a][b]",
        ),
        (
            "#{each x in Cert}[#{x.Key}=#{x.Thumbprint}]#{/each}",
            &[
                ("Cert[a]", "Certificate-1"),
                ("Cert[a].Thumbprint", "AAA"),
                ("Cert[b]", "Certificate-2"),
                ("Cert[b].Thumbprint", "BBB"),
            ],
            "[a=AAA][b=BBB]",
        ),
        // IterationFixture.UserDefinedKeyVariableOverridesTheSynthesizedKey
        (
            "#{each x in Coll}[#{x.Key}]#{/each} #{Coll[a].Key}",
            &[("Coll[a]", "val-a"), ("Coll[a].Key", "user-supplied")],
            "[user-supplied] user-supplied",
        ),
        // UsageFixture.IteratorsResolveToTheIndexedExpression
        (
            "#{each a in Octopus.Action}#{a}|#{/each}",
            &[
                ("Octopus.Action[Package A].Name", "A"),
                ("Octopus.Action[Package B].Name", "B"),
            ],
            "Package A|Package B|",
        ),
        // comma-separated values are not trimmed (EvaluationContext.ResolveAll)
        (
            "#{each r in Roles}<#{r}>#{/each}",
            &[("Roles", "web, db")],
            "<web>< db>",
        ),
        // JsonFixture.KeyAndValueRemainAvailableForJsonBackedCollections
        (
            "#{each x in Json}[#{x.Key}=#{x.Value}]#{/each}",
            &[("Json", "{\"a\": \"AAA\", \"b\": \"BBB\"}")],
            "[a=AAA][b=BBB]",
        ),
    ]);
}

#[test]
fn json_values() {
    table(&[
        // JsonFixture.JsonDoesNotOverrideExisting
        (
            "#{Test.Hello}|#{Test[Foo]}|#{Test.Donkey.Kong}",
            &[
                ("Test.Hello", "Go Away"),
                (
                    "Test",
                    "{\"Hello\": \"World\", \"Foo\": \"Bar\", \"Donkey\" : {\"Kong\": 12}}",
                ),
                ("Test[Foo]", "Nope"),
                ("Test.Donkey.Kong", "MARIO"),
            ],
            "Go Away|Nope|MARIO",
        ),
        // JsonFixture.JsonSupportsVariableInVariable
        (
            "#{Test[Foo]}|#{Test.Foo}|#{Test[#{Prop}]}",
            &[
                ("Prop", "Foo"),
                ("Val", "Bar"),
                ("Test", "{#{Prop}: \"#{Val}\"}"),
            ],
            "Bar|Bar|Bar",
        ),
        // JsonFixture.SuccessfulJsonParsing
        (
            "#{Test[Hello]}",
            &[("Test", "{\"Hello\": \"World\"}")],
            "World",
        ),
        (
            "#{Test.Hello}",
            &[("Test", "{\"Hello\": \"World\"}")],
            "World",
        ),
        (
            "#{Test[Hello][World][Foo][Bar]}",
            &[(
                "Test",
                "{\"Hello\": {\"World\": {\"Foo\": {\"Bar\": 12 }}}}",
            )],
            "12",
        ),
        (
            "#{Test.Items[1].Name}",
            &[(
                "Test",
                "{\"Items\": [{\"Name\": \"Toast\"}, {\"Name\": \"Bread\"}]}",
            )],
            "Bread",
        ),
        (
            "#{Test.Items[0].Name}",
            &[(
                "Test",
                "{\"Items\": [{\"Name\": \"Toast\"}, {\"Name\": \"Bread\"}]}",
            )],
            "Toast",
        ),
        (
            "#{Test.Foo}",
            &[("Test", "{\"Foo\": {\"Bar\":\"11\"}}")],
            "{\"Bar\":\"11\"}",
        ),
        (
            "#{Test.Name}",
            &[(
                "Test",
                "{Name: \"#{Test.Value}\", Desc: \"Monkey\", Value: 12}",
            )],
            "12",
        ),
        // JsonFixture.JsonInvalidDoesNotReplace
        (
            "#{Test.Name}",
            &[("Test", "{Name: NoComma}")],
            "#{Test.Name}",
        ),
        // JsonFixture.JsonArraySupportsIterator
        (
            "#{each number in Test}#{number}#{if Octopus.Template.Each.Last == \"False\"}-#{/if}#{/each}",
            &[("Test", "[2,3,5,8]")],
            "2-3-5-8",
        ),
        // JsonFixture.JsonArraySafeguardedFromNullValues
        (
            "Before:#{each number in Test.Blah}#{number}#{/each}:After",
            &[("Test", "{Blah: null}")],
            "Before::After",
        ),
        // JsonFixture.JsonArrayOutsideOfBounds
        ("Alpha#{Test[4]}bet", &[("Test", "[2,3,5,8]")], "Alphabet"),
        // JsonFixture.JsonObjectSupportsIterator
        (
            "#{each size in Octopus.Sizes}#{size}:#{size.Value},#{/each}",
            &[("Octopus.Sizes", "{\"Small\": \"11.5\",  Large: 15.21}")],
            "Small:11.5,Large:15.21,",
        ),
        // JsonFixture.JsonObjectSupportsIteratorWithInnerSelection
        (
            "#{each size in Octopus.Sizes}#{size.Key} - #{size.Value.Error}#{/each}",
            &[(
                "Octopus.Sizes",
                "{\"X-Large\": {\"Error\": \"Not Stocked\"}}",
            )],
            "X-Large - Not Stocked",
        ),
        // JsonFixture.NullJsonPropertyTreatedAsEmptyString / MissingJsonPropertyTreatedAsEmptyString
        ("Alpha#{Foo.Bar}bet", &[("Foo", "{Bar: null}")], "Alphabet"),
        (
            "Alpha#{Foo.NotBar}bet",
            &[("Foo", "{Bar: \"ABC\"}")],
            "Alphabet",
        ),
        // FiltersFixture.NullJsonPropertyTreatedAsEmptyString
        (
            "Alpha#{Foo.Bar | ToUpper}bet",
            &[("Foo", "{Bar: null}")],
            "Alphabet",
        ),
        // docs: variable-filters "JSON parsing"
        (
            "<h1>#{Custom.MyJson[Name]}</h1>\n#{Custom.MyJson.Name} - #{Custom.MyJson.Description}\nFrom: #{Custom.MyJson.Sizes[0].price | Format C}",
            &[
                (
                    "Custom.MyJson",
                    "{Name: \"t-shirt\", Description: \"I am a shirt\", Sizes: [{size: \"small\", price: 15.00}, {size: \"large\", price: 20.00}]}",
                ),
                ("Custom.MyJson.Description", "Shirts are not shorts."),
            ],
            "<h1>t-shirt</h1>\nt-shirt - Shirts are not shorts.\nFrom: $15.00",
        ),
        // docs: variable-filters "Repetition over json"
        (
            "#{each number in MyNumbers} - #{number}\n#{/each}#{each item in MyObjects}#{item.Key}: #{item.Value.Price}\n#{/each}",
            &[
                ("MyNumbers", "[5,2,4]"),
                (
                    "MyObjects",
                    "{Cat: {Price: 11.5, Description: \"Meow\"}, Dog: {Price: 17.5, Description: \"Woof\"}}",
                ),
            ],
            " - 5\n - 2\n - 4\nCat: 11.5\nDog: 17.5\n",
        ),
    ]);
}

#[test]
fn calc() {
    let v: &[(&str, &str)] = &[
        ("A", "5"),
        ("B", "7"),
        ("The/Var", "9"),
        ("Another-Var", "11"),
    ];
    let rows: &[(&str, &str)] = &[
        // CalculationFixture.ConditionalIsSupportedData
        ("3+2", "5"),
        ("3-2", "1"),
        ("3*2", "6"),
        ("3/2", "1.5"),
        ("3*2+2*4", "14"),
        ("3*(2+2)*4", "48"),
        ("A+2", "7"),
        ("A+B", "12"),
        ("C+2", "#{C+2}"),
        ("{B}-2", "5"),
        ("2-B", "-5"),
        ("2-4", "-2"),
        ("(B*2)-2", "12"),
        ("2-(B*2)", "-12"),
        ("{B}/2", "3.5"),
        ("2/B", "0.2857142857142857"),
        ("2/{B}", "0.2857142857142857"),
        ("2/4", "0.5"),
        ("0.2*B", "1.4000000000000001"),
        ("B*0.2", "1.4000000000000001"),
        ("{Another-Var}-2", "9"),
        ("{The/Var}-2", "7"),
        ("7%2", "1"),
        ("7%7", "0"),
        ("2%7", "2"),
        ("A%B", "5"),
        ("B%A", "2"),
        ("{B}%2", "1"),
        ("{The/Var}%4", "1"),
        ("2+7%4", "5"),
        ("7%4+2", "5"),
        ("2-9%4", "1"),
        ("10%4*2", "4"),
        ("10*4%3", "1"),
        ("(B+3)%4", "2"),
        ("20%(B+1)", "4"),
        ("5.5%2", "#{5.5%2}"),
        ("5%2.5", "#{5%2.5}"),
        ("7%0", "#{7%0}"),
        ("C%2", "#{C%2}"),
        ("B-2", "#{B-2}"),
        ("B/2", "#{B/2}"),
        // spec: variables.md §3
        ("A + B * 2", "19"),
    ];
    for (expr, expected) in rows {
        check(&format!("#{{calc {expr}}}"), v, expected);
    }
}

#[test]
fn text_filters() {
    table(&[
        // FiltersFixture.FiltersAreApplied / FiltersAreAppliedInOrder; names case-insensitive
        ("#{Foo | ToUpper}", &[("Foo", "Abc")], "ABC"),
        ("#{Foo|ToUpper|ToLower}", &[("Foo", "Abc")], "abc"),
        ("#{Foo | toupper}", &[("Foo", "Abc")], "ABC"),
        // docs: variable-filters core filters
        (
            "#{V | ToLower}",
            &[("V", "Automated Deployment")],
            "automated deployment",
        ),
        (
            "#{V | ToUpper}",
            &[("V", "Automated Deployment")],
            "AUTOMATED DEPLOYMENT",
        ),
        // FiltersFixture.StringsCanBeBase64Encoded; docs conversion filters
        (
            "#{String | tobase64}",
            &[("String", "Foo Bar")],
            "Rm9vIEJhcg==",
        ),
        // (the docs table pairs Bar with QmF6, which is the encoding of Baz)
        ("#{V | ToBase64}", &[("V", "Baz")], "QmF6"),
        ("#{V | FromBase64}", &[("V", "QmF6")], "Baz"),
        ("#{V | ToBase64 unicode}", &[("V", "Bar")], "QgBhAHIA"),
        ("#{V | FromBase64 unicode}", &[("V", "QgBhAHIA")], "Bar"),
        (
            "#{V | FromBase64}",
            &[("V", "not base64!")],
            "#{V | FromBase64}",
        ),
        // FiltersFixture Replace rows
        ("#{foo | Replace abc def}", &[("foo", "abc")], "def"),
        ("#{foo | Replace a}", &[("foo", "abc")], "bc"),
        ("#{foo | Replace}", &[("foo", "abc")], "#{foo | Replace}"),
        ("#{foo | Replace abc def}", &[("foo", "ABC")], "ABC"),
        (
            "#{foo | Replace \"ab c\" \"d ef\"}",
            &[("foo", "ab c")],
            "d ef",
        ),
        (
            "#{foo | Replace #{regex}#{replacement}}",
            &[("foo", "abc"), ("regex", "b"), ("replacement", "x")],
            "axc",
        ),
        (
            "#{foo | Replace #{regex}#{replacement}}",
            &[("foo", "a\"b"), ("regex", "a\""), ("replacement", "\"c")],
            "\"cb",
        ),
        ("#{foo | Replace \"a'b\" \"d'e\"}", &[("foo", "a'b")], "d'e"),
        ("#{foo | Replace \"[a-z]+\" 1}", &[("foo", "a'b")], "1'1"),
        (
            "#{foo | Replace \"a\\(b\" \"d(e\"}",
            &[("foo", "a(b")],
            "d(e",
        ),
        (
            "#{foo | Replace \"o(.+)o([a-z]*)s\" \"o$2o$1s\"}",
            &[("foo", "opuocts")],
            "octopus",
        ),
        ("#{foo | Replace \"a\" x}", &[("foo", "ababa")], "xbxbx"),
        ("#{foo | Replace \"^a\" x}", &[("foo", "ababa")], "xbaba"),
        ("#{foo | Replace \"a$\" x}", &[("foo", "ababa")], "ababx"),
        // docs: variable-filters Replace
        ("#{MyVar | Replace b}", &[("MyVar", "abc")], "ac"),
        ("#{MyVar | Replace b X}", &[("MyVar", "abc")], "aXc"),
        ("#{MyVar | Replace \"a b\" X}", &[("MyVar", "a b c")], "X c"),
        (
            "#{MyVar | Replace \"[0-9]+\" X}",
            &[("MyVar", "ab12c3")],
            "abXcX",
        ),
        (
            "#{MyVar | Replace \"(.)b(.)\" \"$2X$1\" }",
            &[("MyVar", "abc")],
            "cXa",
        ),
        (
            "#{MyVar | Replace #{match} _}",
            &[("MyVar", "abc"), ("match", "b")],
            "a_c",
        ),
        // The docs row shows `a\\b`, but .NET (and this) read `\` in a replacement
        // literally, so four backslashes come out.
        (
            "#{MyVar | Replace \"\\\\\" \"\\\\\\\\\"}",
            &[("MyVar", "a\\b")],
            "a\\\\\\\\b",
        ),
        // FiltersFixture Substring rows; docs: variable-filters Substring
        (
            "#{foo | Substring}",
            &[("foo", "ababa")],
            "#{foo | Substring}",
        ),
        (
            "#{foo | Substring 1 2 3}",
            &[("foo", "ababa")],
            "#{foo | Substring 1 2 3}",
        ),
        (
            "#{foo | Substring 7}",
            &[("foo", "Octopus Deploy")],
            "Octopus",
        ),
        (
            "#{foo | Substring 8 6}",
            &[("foo", "Octopus Deploy")],
            "Deploy",
        ),
        (
            "#{foo | Substring 2 3}",
            &[("foo", "Octopus Deploy")],
            "top",
        ),
        (
            "#{foo | Substring a}",
            &[("foo", "Octopus Deploy")],
            "#{foo | Substring a}",
        ),
        (
            "#{foo | Substring 0 a}",
            &[("foo", "Octopus Deploy")],
            "#{foo | Substring 0 a}",
        ),
        (
            "#{foo | Substring 20}",
            &[("foo", "Octopus Deploy")],
            "#{foo | Substring 20}",
        ),
        (
            "#{foo | Substring 8 7}",
            &[("foo", "Octopus Deploy")],
            "#{foo | Substring 8 7}",
        ),
        (
            "#{foo | Substring -1}",
            &[("foo", "Octopus Deploy")],
            "#{foo | Substring -1}",
        ),
        (
            "#{foo | Substring 0 -1}",
            &[("foo", "Octopus Deploy")],
            "#{foo | Substring 0 -1}",
        ),
        // FiltersFixture Truncate rows; docs Truncate
        (
            "#{foo | Truncate}",
            &[("foo", "Octopus Deploy")],
            "#{foo | Truncate}",
        ),
        (
            "#{foo | Truncate 50}",
            &[("foo", "Octopus Deploy")],
            "Octopus Deploy",
        ),
        (
            "#{foo | Truncate a}",
            &[("foo", "Octopus Deploy")],
            "#{foo | Truncate a}",
        ),
        (
            "#{foo | Truncate -1}",
            &[("foo", "Octopus Deploy")],
            "#{foo | Truncate -1}",
        ),
        (
            "#{foo | Truncate 7}",
            &[("foo", "Octopus Deploy")],
            "Octopus...",
        ),
        ("#{foo | Truncate 7}", &[("foo", "abc")], "abc"),
        // FiltersFixture Trim rows
        (
            "#{foo | Trim}",
            &[("foo", " Octopus Deploy ")],
            "Octopus Deploy",
        ),
        (
            "#{foo | Trim start}",
            &[("foo", " Octopus Deploy ")],
            "Octopus Deploy ",
        ),
        (
            "#{foo | Trim End}",
            &[("foo", " Octopus Deploy ")],
            " Octopus Deploy",
        ),
        (
            "#{foo | Substring 8 | Trim}",
            &[("foo", "Octopus Deploy")],
            "Octopus",
        ),
        (
            "#{foo | Trim Both}",
            &[("foo", "Octopus Deploy")],
            "#{foo | Trim Both}",
        ),
        // FiltersFixture Indent rows
        ("#{foo | Indent}", &[("foo", "")], ""),
        (
            "#{foo | Indent}",
            &[("foo", "Octopus Deploy")],
            "    Octopus Deploy",
        ),
        (
            "#{foo | Indent}",
            &[("foo", "A\nB\nC")],
            "    A\n    B\n    C",
        ),
        ("#{foo | Indent 2}", &[("foo", "A\nB")], "  A\n  B"),
        ("#{foo | Indent /3}", &[("foo", "A\nB\nC")], "A\n   B\n   C"),
        (
            "#{foo | Indent 3/2}",
            &[("foo", "A\nB\nC")],
            "   A\n  B\n  C",
        ),
        ("#{foo | Indent //}", &[("foo", "A\nB\nC")], "//A\n//B\n//C"),
        (
            "#{foo | Indent \"/* \" \" * \"}",
            &[("foo", "A\nB\nC")],
            "/* A\n * B\n * C",
        ),
        ("#{foo | Indent 256}", &[("foo", "A\nB")], "256A\n256B"),
        (
            "#{foo | Indent abc 123 def}",
            &[("foo", "foo")],
            "#{foo | Indent abc 123 def}",
        ),
        ("#{ | Indent}", &[("foo", "foo")], "#{ | Indent}"),
        (
            "#{ foo | Indent \\\"# \\\"}",
            &[("foo", "A\nB")],
            "# A\n# B",
        ),
        // FiltersFixture Append / Prepend rows
        ("#{|Append foo}", NONE, "foo"),
        ("#{foo | Append}", &[("foo", "bar")], "#{foo | Append}"),
        ("#{ | Append}", &[("foo", "bar")], "#{ | Append}"),
        ("#{foo | Append value}", &[("foo", "bar")], "barvalue"),
        (
            "#{foo | Append value1 value2}",
            &[("foo", "bar")],
            "barvalue1value2",
        ),
        (
            "#{foo | Append value1 \" \" value2}",
            &[("foo", "bar")],
            "barvalue1 value2",
        ),
        (
            "#{foo | Append \" \" #{foo} \" \" value}",
            &[("foo", "bar")],
            "bar bar value",
        ),
        ("#{|Prepend foo}", NONE, "foo"),
        ("#{foo | Prepend}", &[("foo", "bar")], "#{foo | Prepend}"),
        (
            "#{foo | Prepend value1 value2}",
            &[("foo", "bar")],
            "value1value2bar",
        ),
        (
            "#{foo | Prepend \" \" #{foo} \" \" value}",
            &[("foo", "bar")],
            " bar valuebar",
        ),
        // NullFunction.cs: Null renders nothing
        ("a#{Foo | Null}b", &[("Foo", "x")], "ab"),
    ]);
}

#[test]
fn comparison_filters() {
    let abc: &[(&str, &str)] = &[("foo", "abc def")];
    table(&[
        // FiltersFixture.Match rows
        ("#{foo | Match abc}", abc, "true"),
        ("#{foo | Match cba}", abc, "false"),
        ("#{foo | Match}", abc, "#{foo | Match}"),
        ("#{foo | Match a b}", abc, "#{foo | Match a b}"),
        ("#{foo | Match ABC}", abc, "false"),
        ("#{foo | Match \"abc def\"}", abc, "true"),
        ("#{foo | Match \"abc'def\"}", &[("foo", "abc'def")], "true"),
        ("#{foo | Match \".*\"}", abc, "true"),
        ("#{foo | Match \"[0-9]+\"}", &[("foo", "abc def1")], "true"),
        ("#{foo | Match \"c\\(d\"}", &[("foo", "abc(def")], "true"),
        (
            "#{foo | Match #{regex}}",
            &[("foo", "abc def"), ("regex", "def")],
            "true",
        ),
        // FiltersFixture.StartsWith / EndsWith / Contains rows
        ("#{foo | StartsWith abc}", abc, "true"),
        ("#{foo | StartsWith bc}", abc, "false"),
        ("#{foo | StartsWith}", abc, "#{foo | StartsWith}"),
        ("#{foo | StartsWith a b}", abc, "#{foo | StartsWith a b}"),
        ("#{foo | StartsWith ABC}", abc, "false"),
        ("#{foo | StartsWith \"abc d\"}", abc, "true"),
        (
            "#{foo | StartsWith #{str}}",
            &[("foo", "abc def"), ("str", "abc")],
            "true",
        ),
        ("#{foo | EndsWith def}", abc, "true"),
        ("#{foo | EndsWith de}", abc, "false"),
        ("#{foo | EndsWith DEF}", abc, "false"),
        ("#{foo | EndsWith \"c def\"}", abc, "true"),
        ("#{foo | EndsWith \"'def\"}", &[("foo", "abc'def")], "true"),
        ("#{foo | Contains de}", abc, "true"),
        ("#{foo | Contains ed}", abc, "false"),
        ("#{foo | Contains}", abc, "#{foo | Contains}"),
        ("#{foo | Contains ABC}", abc, "false"),
        ("#{foo | Contains \"c de\"}", abc, "true"),
        (
            "#{foo | Contains #{str}}",
            &[("foo", "abc def"), ("str", "c d")],
            "true",
        ),
        // docs: variable-filters comparison filters
        ("#{MyVar | Contains \" b(\"}", &[("MyVar", "a b(c")], "true"),
        (
            "#{MyVar | Contains #{str}}",
            &[("MyVar", "a\"b\"c"), ("str", "\"b\"")],
            "true",
        ),
    ]);
}

#[test]
fn escaping_filters() {
    table(&[
        // FiltersFixture.HtmlIsEscaped / XmlIsEscaped; docs: variable-filters
        ("#{Foo | HtmlEscape}", &[("Foo", "A&'bc")], "A&amp;&apos;bc"),
        ("#{Foo | HtmlEscape}", &[("Foo", "")], ""),
        (
            "<h3>#{ProjectName | HtmlEscape}</h3>",
            &[("ProjectName", "You & I")],
            "<h3>You &amp; I</h3>",
        ),
        (
            "#{Foo | HtmlEscape}",
            &[("Foo", "1 < 2 / 3")],
            "1 &lt; 2 &#x2F; 3",
        ),
        ("#{Foo | XmlEscape}", &[("Foo", "A&'bc")], "A&amp;&apos;bc"),
        ("#{Foo | XmlEscape}", &[("Foo", "1 < 2")], "1 &lt; 2"),
        // FiltersFixture.JsonIsEscaped
        (
            "#{Foo | JsonEscape}",
            &[("Foo", "Test\"Test")],
            "Test\\\"Test",
        ),
        (
            "#{Foo | JsonEscape}",
            &[("Foo", "Test\rTest")],
            "Test\\rTest",
        ),
        (
            "#{Foo | JsonEscape}",
            &[("Foo", "Test\nTest")],
            "Test\\nTest",
        ),
        (
            "#{Foo | JsonEscape}",
            &[("Foo", "Test\tTest")],
            "Test\\tTest",
        ),
        (
            "#{Foo | JsonEscape}",
            &[("Foo", "Test\\Test")],
            "Test\\\\Test",
        ),
        (
            "#{Foo | JsonEscape}",
            &[("Foo", "He said \"Hello!\"")],
            "He said \\\"Hello!\\\"",
        ),
        // FiltersFixture.YamlSingleQuoteIsEscaped
        (
            "#{Foo | YamlSingleQuoteEscape}",
            &[("Foo", "single'quote")],
            "single''quote",
        ),
        ("#{Foo | YamlSingleQuoteEscape}", &[("Foo", "\\'")], "\\''"),
        (
            "#{Foo | YamlSingleQuoteEscape}",
            &[("Foo", "a\n\tb\n\tc\n\td")],
            "a\n\n\tb\n\n\tc\n\n\td",
        ),
        (
            "#{Foo | YamlSingleQuoteEscape}",
            &[("Foo", "a\r\nb")],
            "a\r\n\r\nb",
        ),
        (
            "#{Foo | YamlSingleQuoteEscape}",
            &[("Foo", "a\n\r\nb")],
            "a\n\n\r\nb",
        ),
        (
            "#{Foo | YamlSingleQuoteEscape}",
            &[("Foo", "The bee's knees")],
            "The bee''s knees",
        ),
        // FiltersFixture.YamlDoubleQuoteIsEscaped
        (
            "#{Foo | YamlDoubleQuoteEscape}",
            &[("Foo", "double\"quote")],
            "double\\\"quote",
        ),
        ("#{Foo | YamlDoubleQuoteEscape}", &[("Foo", "\\")], "\\\\"),
        ("#{Foo | YamlDoubleQuoteEscape}", &[("Foo", "\t")], "\\t"),
        (
            "#{Foo | YamlDoubleQuoteEscape}",
            &[("Foo", "\r\n")],
            "\\r\\n",
        ),
        (
            "#{Foo | YamlDoubleQuoteEscape}",
            &[("Foo", "single'quote")],
            "single'quote",
        ),
        (
            "#{Foo | YamlDoubleQuoteEscape}",
            &[("Foo", "我叫章鱼")],
            "\\u6211\\u53eb\\u7ae0\\u9c7c",
        ),
        // FiltersFixture.PropertiesKeyIsEscaped
        ("#{Foo | PropertiesKeyEscape}", &[("Foo", " ")], "\\ "),
        ("#{Foo | PropertiesKeyEscape}", &[("Foo", ":")], "\\:"),
        ("#{Foo | PropertiesKeyEscape}", &[("Foo", "=")], "\\="),
        ("#{Foo | PropertiesKeyEscape}", &[("Foo", "\\")], "\\\\"),
        (
            "#{Foo | PropertiesKeyEscape}",
            &[("Foo", " a \n b ")],
            "\\ a\\ \\n\\ b\\ ",
        ),
        (
            "#{Foo | PropertiesKeyEscape}",
            &[("Foo", "我叫章鱼")],
            "\\u6211\\u53eb\\u7ae0\\u9c7c",
        ),
        ("#{Foo | PropertiesKeyEscape}", &[("Foo", "÷ü")], "÷ü"),
        (
            "#{Foo | PropertiesKeyEscape}",
            &[("Foo", "Hey: x=y")],
            "Hey\\:\\ x\\=y",
        ),
        // FiltersFixture.PropertiesValueIsEscaped
        ("#{Foo | PropertiesValueEscape}", &[("Foo", ":")], ":"),
        ("#{Foo | PropertiesValueEscape}", &[("Foo", " ")], "\\ "),
        ("#{Foo | PropertiesValueEscape}", &[("Foo", "a ")], "a "),
        (
            "#{Foo | PropertiesValueEscape}",
            &[("Foo", " a \n b ")],
            "\\ a \\n b ",
        ),
        (
            "#{Foo | PropertiesValueEscape}",
            &[("Foo", "a\\b=c")],
            "a\\\\b=c",
        ),
        // FiltersFixture.UriDataStringsAreEncoded / UriStringsAreEncoded
        (
            "#{Foo | UriDataEscape}",
            &[("Foo", "A b:c+d/e")],
            "A%20b%3Ac%2Bd%2Fe",
        ),
        ("#{Foo | UriEscape}", &[("Foo", "A b:c+d/e")], "A%20b:c+d/e"),
        ("#{Foo | UriEscape}", &[("Foo", "")], ""),
        // escapes take no options
        (
            "#{Foo | HtmlEscape x}",
            &[("Foo", "a")],
            "#{Foo | HtmlEscape x}",
        ),
    ]);
}

#[test]
fn markdown() {
    table(&[
        // UsageFixture.MarkdownIsProcessed
        (
            "#{Foo | Markdown}",
            &[("Foo", "_yeah!_")],
            "<p><em>yeah!</em></p>\n\n",
        ),
        (
            "#{Foo | MarkdownToHtml}",
            &[("Foo", "This _rocks_")],
            "<p>This <em>rocks</em></p>\n\n",
        ),
        // FiltersFixture.MarkdownHttpLinkIsProcessed
        (
            "#{Foo | Markdown}",
            &[("Foo", "http://octopus.com")],
            "<p><a href=\"http://octopus.com\">http://octopus.com</a></p>\n\n",
        ),
        (
            "#{Foo | Markdown}",
            &[("Foo", "[Some link](http://octopus.com)")],
            "<p><a href=\"http://octopus.com\">Some link</a></p>\n\n",
        ),
        // FiltersFixture.MarkdownTablesAreProcessed
        (
            "#{Foo | MarkdownToHtml}",
            &[("Foo", "|Header1|Header2|\n|-|-|\n|Cell1|Cell2|")],
            "<table>\n<thead>\n<tr>\n<th>Header1</th>\n<th>Header2</th>\n</tr>\n</thead>\n<tbody>\n<tr>\n<td>Cell1</td>\n<td>Cell2</td>\n</tr>\n</tbody>\n</table>\n\n",
        ),
    ]);
}

#[test]
fn hash_filters() {
    let q = "The quick brown fox jumps over the lazy dog";
    let q64 = "VGhlIHF1aWNrIGJyb3duIGZveCBqdW1wcyBvdmVyIHRoZSBsYXp5IGRvZw==";
    let rows: &[(&str, &str, &str)] = &[
        // FiltersFixture.Md5Hash / Md5HashWithSize / Md5HashWithEncoding / AndSize
        ("Md5", "", "d41d8cd98f00b204e9800998ecf8427e"),
        ("Md5", q, "9e107d9d372bb6826bd81d3542a419d6"),
        ("Md5 4", "", "d41d8cd9"),
        ("Md5 3", q, "9e107d"),
        ("Md5 unicode", q, "b0986ae6ee1eefee8a4a399090126837"),
        ("Md5 base64", q64, "9e107d9d372bb6826bd81d3542a419d6"),
        ("Md5 utf-8 5", "", "d41d8cd98f"),
        ("Md5 3 unicode", "", "d41d8c"),
        ("Md5 800", q, "9e107d9d372bb6826bd81d3542a419d6"),
        // FiltersFixture.Sha1Hash rows
        ("Sha1", "", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("Sha1", q, "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"),
        (
            "Sha1 unicode",
            q,
            "bd136cb58899c93173c33a90dde95ead0d0cf6df",
        ),
        (
            "Sha1 base64",
            q64,
            "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
        ),
        (
            "Sha1 2 utf8",
            "The quick brown fox jumps over the lazy cog",
            "de9f",
        ),
        // FiltersFixture.Sha256Hash rows
        (
            "Sha256",
            "",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (
            "Sha256",
            q,
            "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592",
        ),
        (
            "Sha256 unicode",
            q,
            "3b5b0eac46c8f0c16fa1b9c187abc8379cc936f6508892969d49234c6c540e58",
        ),
        ("Sha256 4", "", "e3b0c442"),
        // FiltersFixture.Sha384Hash rows
        (
            "Sha384",
            "",
            "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b",
        ),
        ("Sha384 3", q, "ca737f"),
        // FiltersFixture.Sha512Hash rows
        (
            "Sha512",
            "",
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
        ),
        (
            "Sha512 utf8 2",
            "The quick brown fox jumps over the lazy dog.",
            "91ea",
        ),
    ];
    for (filter, input, expected) in rows {
        check(&format!("#{{foo | {filter}}}"), &[("foo", input)], expected);
    }
    // FiltersFixture.*HashInvalidTemplate
    for algo in ["Md5", "Sha1", "Sha256", "Sha384", "Sha512"] {
        for opts in [
            "-1",
            "0",
            "bar",
            "utf8 0",
            "0 utf8",
            "bar 12",
            "12 bar",
            "utf8 12 extra",
            "12 utf8 extra",
            "base64",
        ] {
            let t = format!("#{{foo | {algo} {opts}}}");
            check(&t, &[("foo", "bar")], &t);
        }
        let t = format!("#{{ | {algo}}}");
        check(&t, &[("foo", "bar")], &t);
    }
}

#[test]
fn version_filters() {
    // VersionFixture.TestVersionMajor rows:
    // version, major, minor, patch, revision, prerelease, prefix, counter, metadata
    let rows: &[[&str; 9]] = &[
        ["1", "1", "0", "0", "0", "", "", "", ""],
        ["1.2", "1", "2", "0", "0", "", "", "", ""],
        ["1.2.3", "1", "2", "3", "0", "", "", "", ""],
        ["1.2.3.4", "1", "2", "3", "4", "", "", "", ""],
        [
            "1.2.3.4-branch.1",
            "1",
            "2",
            "3",
            "4",
            "branch.1",
            "branch",
            "1",
            "",
        ],
        [
            "1.2.3.4-branch.1+meta",
            "1",
            "2",
            "3",
            "4",
            "branch.1",
            "branch",
            "1",
            "meta",
        ],
        [
            "v1.2.3.4-branch.1+meta",
            "1",
            "2",
            "3",
            "4",
            "branch.1",
            "branch",
            "1",
            "meta",
        ],
        [
            "V1.2.3.4-branch.hithere+meta",
            "1",
            "2",
            "3",
            "4",
            "branch.hithere",
            "branch",
            "hithere",
            "meta",
        ],
        [
            "V1.2.3.4-branch-hithere+meta",
            "1",
            "2",
            "3",
            "4",
            "branch-hithere",
            "branch",
            "hithere",
            "meta",
        ],
        [
            "V1.2.3.4-branch_hithere+meta",
            "1",
            "2",
            "3",
            "4",
            "branch_hithere",
            "branch",
            "hithere",
            "meta",
        ],
        [
            "19.0.0.Final",
            "19",
            "0",
            "0",
            "0",
            "Final",
            "Final",
            "",
            "",
        ],
        [
            "284.0.0-debian_component_based",
            "284",
            "0",
            "0",
            "0",
            "debian_component_based",
            "debian",
            "component_based",
            "",
        ],
        ["latest", "0", "0", "0", "0", "latest", "latest", "", ""],
        ["v1", "1", "0", "0", "0", "", "", "", ""],
        ["v1.2.3", "1", "2", "3", "0", "", "", "", ""],
        // docs: variable-filters extraction filters (the docs row gives prefix
        // "my-branch" and counter "1.2"; Octostache's VersionFixture rule, used
        // here, splits at the first separator)
        [
            "1.2.3.4-my-branch.1.2+build10",
            "1",
            "2",
            "3",
            "4",
            "my-branch.1.2",
            "my",
            "branch.1.2",
            "build10",
        ],
    ];
    let filters = [
        "VersionMajor",
        "VersionMinor",
        "VersionPatch",
        "VersionRevision",
        "VersionPreRelease",
        "VersionPreReleasePrefix",
        "VersionPreReleaseCounter",
        "VersionMetadata",
    ];
    for row in rows {
        for (i, f) in filters.iter().enumerate() {
            check(
                &format!("#{{Version | {f}}}"),
                &[("Version", row[0])],
                row[i + 1],
            );
        }
    }
}

#[test]
fn uri_part() {
    let rows: &[(&str, &str, &str)] = &[
        // FiltersFixture.UriPart rows; docs: variable-filters UriPart
        (
            "/docs",
            "UriPart Host",
            "[UriPart Host error: This operation is not supported for a relative URI.]",
        ),
        (
            "https://octopus.com/docs",
            "UriPart",
            "[UriPart error: no argument given]",
        ),
        (
            "https://octopus.com/docs",
            "UriPart bar",
            "[UriPart bar error: argument 'bar' not supported]",
        ),
        ("https://octopus.com/docs", "UriPart AbsolutePath", "/docs"),
        (
            "https://octopus.com/docs",
            "UriPart AbsoluteUri",
            "https://octopus.com/docs",
        ),
        (
            "https://octopus.com/docs",
            "UriPart Authority",
            "octopus.com",
        ),
        (
            "https://octopus.com/docs",
            "UriPart DnsSafeHost",
            "octopus.com",
        ),
        (
            "https://octopus.com/docs#filters",
            "UriPart Fragment",
            "#filters",
        ),
        ("https://octopus.com/docs", "UriPart Host", "octopus.com"),
        (
            "https://octopus.com/docs",
            "UriPart HostAndPort",
            "octopus.com:443",
        ),
        ("https://octopus.com/docs", "UriPart HostNameType", "Dns"),
        ("https://octopus.com/docs", "UriPart IsAbsoluteUri", "true"),
        ("https://octopus.com/docs", "UriPart IsDefaultPort", "true"),
        ("https://octopus.com/docs", "UriPart IsFile", "false"),
        ("https://octopus.com/docs", "UriPart IsLoopback", "false"),
        ("https://octopus.com/docs", "UriPart IsUnc", "false"),
        ("https://octopus.com/docs", "UriPart Path", "/docs"),
        (
            "https://octopus.com/docs?filter=faq",
            "UriPart PathAndQuery",
            "/docs?filter=faq",
        ),
        ("https://octopus.com/docs", "UriPart Port", "443"),
        (
            "https://octopus.com/docs?filter=faq",
            "UriPart Query",
            "?filter=faq",
        ),
        ("https://octopus.com/docs", "UriPart Scheme", "https"),
        (
            "https://octopus.com/docs",
            "UriPart SchemeAndServer",
            "https://octopus.com",
        ),
        (
            "https://username:password@octopus.com",
            "UriPart UserInfo",
            "username:password",
        ),
    ];
    for (input, filter, expected) in rows {
        check(&format!("#{{foo | {filter}}}"), &[("foo", input)], expected);
    }
}

#[test]
fn format_filter() {
    table(&[
        // FiltersFixture.DateIsFormatted / DateFormattingCanUseInnerVariable
        (
            "#{Foo | Format Date \"HH dd-MMM-yyy\"}",
            &[("Foo", "2030/05/22 09:05:00")],
            "09 22-May-2030",
        ),
        (
            "#{Foo | Format Date #{Format}}",
            &[("Foo", "2030/05/22 09:05:00"), ("Format", "HH dd-MMM-yyyy")],
            "09 22-May-2030",
        ),
        // FiltersFixture.GenericConverterAcceptsDate / EscaoedFilterStringAccepted
        (
            "#{MyDate | Format DateTime \"HH dd-MMM-yyyy\" }",
            &[("MyDate", "2030/05/22 09:05:00")],
            "09 22-May-2030",
        ),
        (
            "#{MyDate | Format DateTime \\\"HH dd-MMM-yyyy\\\" }",
            &[("MyDate", "2030/05/22 09:05:00")],
            "09 22-May-2030",
        ),
        // FiltersFixture.FormatFunctionWillTryDefaultDateTimeIfNotDecimal / WillReturnUnreplacedIfNoDefault
        (
            "#{ Date | Format yyyy}",
            &[("Date", "2030/05/22 09:05:00")],
            "2030",
        ),
        (
            "#{Invalid | Format yyyy}",
            &[("Invalid", "hello World")],
            "#{Invalid | Format yyyy}",
        ),
        // docs: variable-filters Format (en-US culture)
        ("#{MyVar | Format C}", &[("MyVar", "4.3")], "$4.30"),
        ("#{Cash | Format C}", &[("Cash", "23.4")], "$23.40"),
        ("#{Cash | Format Double C}", &[("Cash", "23.4")], "$23.40"),
        (
            "#{MyVar | Format yyyy}",
            &[("MyVar", "2030/05/22 09:05:00")],
            "2030",
        ),
        (
            "#{MyVar | Format \"MM/dd/yyyy\"}",
            &[("MyVar", "2020-01-01T11:09:38+01:00")],
            "01/01/2020",
        ),
        (
            "#{MyVar | Format \"hh:mm:ss tt zz\"}",
            &[("MyVar", "2020-01-01T11:09:38+01:00")],
            "11:09:38 AM +01",
        ),
        // .NET standard and custom numeric formats
        ("#{N | Format N}", &[("N", "1234.5")], "1,234.50"),
        ("#{N | Format N0}", &[("N", "1234.5")], "1,235"),
        ("#{N | Format F2}", &[("N", "3.14159")], "3.14"),
        ("#{N | Format F0}", &[("N", "2.5")], "3"),
        ("#{N | Format P}", &[("N", "0.256")], "25.60%"),
        ("#{N | Format P0}", &[("N", "0.256")], "26%"),
        ("#{N | Format C}", &[("N", "-1234.5")], "-$1,234.50"),
        ("#{N | Format Int32 D4}", &[("N", "42")], "0042"),
        ("#{N | Format Int X}", &[("N", "255")], "FF"),
        ("#{N | Format D}", &[("N", "42")], "#{N | Format D}"),
        // `#` and `.` cannot appear in an unquoted option, and `"..."` options
        // exclude `#` (TemplateParser.cs QuotedText), so such formats come from a
        // variable or `\"...\"`; inline they do not parse and are left as they are.
        (
            "#{N | Format #.00}",
            &[("N", "3.14159")],
            "#{N | Format #.00}",
        ),
        (
            "#{N | Format #{F}}",
            &[("N", "3.14159"), ("F", "#.00")],
            "3.14",
        ),
        ("#{N | Format \\\"#.00\\\"}", &[("N", "0.5")], ".50"),
        ("#{N | Format 0000}", &[("N", "42")], "0042"),
        (
            "#{N | Format #{F}}",
            &[("N", "1234567.891"), ("F", "#,##0.00")],
            "1,234,567.89",
        ),
        ("#{N | Format \"0.0%\"}", &[("N", "0.1234")], "12.3%"),
        ("#{N | Format \"0.00;(0.00)\"}", &[("N", "-5")], "(5.00)"),
        ("#{N | Format E}", &[("N", "1234.5")], "1.234500E+003"),
        ("#{N | Format Double G}", &[("N", "0.1")], "0.1"),
        // .NET custom and standard date formats
        (
            "#{D | Format \"yyyy-MM-dd HH:mm:ss\"}",
            &[("D", "2030-05-22T09:05:07")],
            "2030-05-22 09:05:07",
        ),
        (
            "#{D | Format Date \"dddd, MMMM d\"}",
            &[("D", "2030-05-22")],
            "Wednesday, May 22",
        ),
        (
            "#{D | Format Date s}",
            &[("D", "2030-05-22 21:05:07")],
            "2030-05-22T21:05:07",
        ),
        (
            "#{D | Format Date \"h:mm tt\"}",
            &[("D", "2030-05-22 21:05:07")],
            "9:05 PM",
        ),
        (
            "#{D | Format Date O}",
            &[("D", "2030-05-22 21:05:07")],
            "2030-05-22T21:05:07.0000000",
        ),
        (
            "#{D | Format DateTimeOffset zzz}",
            &[("D", "2030-05-22T21:05:07Z")],
            "+00:00",
        ),
        (
            "#{D | Format DateTimeOffset zzz}",
            &[("D", "2030-05-22T21:05:07")],
            "+10:00",
        ),
        (
            "#{D | Format Date \"yyyy-MM-dd HH:mm\"}",
            &[("D", "2030-05-22T00:00:00Z")],
            "2030-05-22 10:00",
        ),
        ("#{D | Format Date d}", &[("D", "5/22/2030")], "5/22/2030"),
    ]);
}

#[test]
fn date_filters() {
    table(&[
        // docs: variable-filters NowDate and NowDateUtc (with the fixed clock)
        ("#{ | NowDate }", NONE, "2016-11-03T08:53:11.0946448"),
        ("#{ | NowDateUtc}", NONE, "2016-11-02T22:53:11.0946448Z"),
        ("#{ | NowDate \"HH dd-MMM-yyyy\"}", NONE, "08 03-Nov-2016"),
        (
            "#{ | NowDate #{MyFormat}}",
            &[("MyFormat", "dd-MM-yyyy")],
            "03-11-2016",
        ),
        ("#{ | NowDate | Format Date MMM}", NONE, "Nov"),
        // FiltersFixture.NowDateCanBeFormatted / NowDateUtcCanBeChained
        ("#{ | NowDate yyyy}", NONE, "2016"),
        ("#{ | NowDateUtc | Format DateTimeOffset zz}", NONE, "+00"),
        ("#{ | NowDate | Format DateTimeOffset zz}", NONE, "+10"),
        // NowDate takes no input
        ("#{Foo | NowDate}", &[("Foo", "x")], "#{Foo | NowDate}"),
        // DateFunction.cs: naive stays naive, UTC keeps Z, offsets are kept
        (
            "#{D | AddDays 1}",
            &[("D", "2030-05-22T09:05:00")],
            "2030-05-23T09:05:00.0000000",
        ),
        (
            "#{D | AddHours -36}",
            &[("D", "2030-05-22T09:05:00Z")],
            "2030-05-20T21:05:00.0000000Z",
        ),
        (
            "#{D | AddDays \"1.5\"}",
            &[("D", "2030-05-22T09:05:00Z")],
            "2030-05-23T21:05:00.0000000Z",
        ),
        (
            "#{D | AddHours 2}",
            &[("D", "2030-05-22T09:05:00+02:00")],
            "2030-05-22T11:05:00.0000000+02:00",
        ),
        (
            "#{D | AddMinutes 90}",
            &[("D", "2030-05-22T09:05:00")],
            "2030-05-22T10:35:00.0000000",
        ),
        (
            "#{D | AddSeconds 30}",
            &[("D", "2030-05-22T09:05:00")],
            "2030-05-22T09:05:30.0000000",
        ),
        (
            "#{D | AddMonths 1}",
            &[("D", "2030-01-31T00:00:00")],
            "2030-02-28T00:00:00.0000000",
        ),
        (
            "#{D | AddYears 1}",
            &[("D", "2028-02-29T00:00:00")],
            "2029-02-28T00:00:00.0000000",
        ),
        (
            "#{D | AddTimeSpan \"1.02:03:04\"}",
            &[("D", "2030-05-22T00:00:00")],
            "2030-05-23T02:03:04.0000000",
        ),
        // Calamari PR #2129 note: AddTimeSpan 48:00:00 is 48 days
        (
            "#{D | AddTimeSpan 48:00:00}",
            &[("D", "2030-05-22T00:00:00")],
            "2030-07-09T00:00:00.0000000",
        ),
        (
            "#{D | AddDays x}",
            &[("D", "2030-05-22T09:05:00")],
            "#{D | AddDays x}",
        ),
        (
            "#{D | AddDays 1}",
            &[("D", "not a date")],
            "#{D | AddDays 1}",
        ),
        (
            "#{ | NowDateUtc | AddHours 1}",
            NONE,
            "2016-11-02T23:53:11.0946448Z",
        ),
    ]);
}

#[test]
fn warnings_name_what_was_echoed() {
    // spec: variables.md §3 echo rules: one warning naming each echoed thing
    assert_eq!(
        warnings("#{Foo.Bar}", NONE),
        ["unknown variable Foo.Bar was left as #{Foo.Bar}"]
    );
    assert_eq!(
        warnings("#{X | Frob}", &[("X", "1")]),
        ["unknown filter Frob"]
    );
    assert_eq!(
        warnings("#{X | Substring a}", &[("X", "1")]),
        ["filter Substring cannot use its arguments"]
    );
    assert_eq!(
        warnings("#{Foo}#{Foo}", NONE),
        ["unknown variable Foo was left as #{Foo}"]
    );
    assert_eq!(
        warnings("#{Foo | ToUpper}", NONE),
        ["unknown variable Foo was left as #{Foo | ToUpper}"]
    );
    assert!(warnings("#{X} #{if Y}#{/if} ##{Z}", &[("X", "1")]).is_empty());
    assert!(warnings("a#{X | Null}b", &[("X", "1")]).is_empty());
    // nested missing values are reported too
    assert_eq!(
        warnings("#{A}", &[("A", "#{B}")]),
        ["unknown variable B was left as #{B}"]
    );
    // a broken fragment copied verbatim gives no warning of its own
    assert!(warnings("case \"#{\"*) ;; esac", NONE).is_empty());
    let w = warnings("#{calc C+2}", NONE);
    assert_eq!(w.len(), 1);
}

#[test]
fn recursion_is_an_error() {
    // UsageFixture.MaximumRecursionLimitException
    let d = dict(&[("Foo", "#{Foo}")]);
    assert_eq!(
        d.evaluate("#{Foo}", &ctx()),
        Err(EvaluationError::Recursion {
            chain: vec!["Foo".to_string(), "Foo".to_string()]
        })
    );
    let d = dict(&[
        ("Foo", "#{Fox}"),
        ("Fox", "#{Fax}"),
        ("Fax", "#{Fix}"),
        ("Fix", "#{Foo}"),
    ]);
    match d.evaluate("x #{Foo}", &ctx()) {
        Err(EvaluationError::Recursion { chain }) => {
            assert_eq!(chain, ["Foo", "Fox", "Fax", "Fix", "Foo"])
        }
        other => panic!("expected recursion, got {other:?}"),
    }
    let e = d.get("Fox", &ctx());
    match e {
        Err(err) => assert_eq!(
            err.to_string(),
            "variable Fox refers to itself through Fox -> Fax -> Fix -> Foo -> Fox"
        ),
        Ok(v) => panic!("expected recursion, got {v:?}"),
    }
    // case-insensitive self-reference, through a filter, and in a condition
    assert!(
        dict(&[("A", "#{a | ToUpper}")])
            .evaluate("#{A}", &ctx())
            .is_err()
    );
    assert!(
        dict(&[("A", "#{if A}x#{/if}")])
            .evaluate("#{A}", &ctx())
            .is_err()
    );
    // a variable used twice is not recursion
    check("#{A}", &[("A", "#{B}#{B}"), ("B", "b")], "bb");
}

#[test]
fn dictionary_api() {
    let mut d = VariableDictionary::new();
    assert!(d.is_empty());
    d.set("InstallPath", "C:\\#{Directory}");
    d.set("Directory", "MyDirectory");
    d.set("directory", "Dir2");
    assert_eq!(d.len(), 2);
    assert_eq!(d.names().collect::<Vec<_>>(), ["InstallPath", "Directory"]);
    // UsageFixture.HowToUseTheDictionary
    assert_eq!(d.get_raw("installpath"), Some("C:\\#{Directory}"));
    assert_eq!(
        d.get("InstallPath", &ctx()),
        Ok(Some("C:\\Dir2".to_string()))
    );
    assert_eq!(d.get("Missing", &ctx()), Ok(None));
    d.set("Protocol", "#{Proto}");
    assert_eq!(d.get("Protocol", &ctx()), Ok(Some("#{Proto}".to_string())));
    // values that do not parse strictly are used as they are
    d.set("Broken", "#{A #{Directory}");
    assert_eq!(
        d.get("Broken", &ctx()),
        Ok(Some("#{A #{Directory}".to_string()))
    );
    let clone = d.clone();
    assert_eq!(
        clone.evaluate("#{Directory}", &ctx()).map(|r| r.text),
        Ok("Dir2".to_string())
    );
}

#[test]
fn truthiness() {
    // TemplateEvaluator.IsTruthy
    for v in ["", "0", "false", "False", " FALSE ", "no", "No", " no"] {
        assert!(!is_truthy(v), "{v:?}");
    }
    for v in ["1", "true", "yes", "anything", " 0", "00", "nope"] {
        assert!(is_truthy(v), "{v:?}");
    }
}

#[test]
fn hostile_input_is_safe() {
    // Deep nesting is left unchanged with a warning, not a stack overflow.
    let deep = "#{if A}".repeat(5000) + &"#{/if}".repeat(5000);
    let r = dict(&[("A", "1")]).evaluate(&deep, &ctx());
    match r {
        Ok(r) => {
            assert_eq!(r.text, deep);
            assert_eq!(r.warnings.len(), 1);
        }
        Err(e) => panic!("{e}"),
    }
    // Unclosed nesting parses in reasonable time (memoised).
    let unclosed = "#{if A}x".repeat(60);
    let r = dict(&[("A", "1")]).evaluate(&unclosed, &ctx());
    assert!(r.is_ok());
    // Long chains of distinct variables are fine; very long ones stop with a warning.
    let mut vars: Vec<(String, String)> = (0..300)
        .map(|i| (format!("V{i}"), format!("#{{V{}}}", i + 1)))
        .collect();
    vars.push(("V300".to_string(), "end".to_string()));
    let d: VariableDictionary = vars.into_iter().collect();
    assert!(d.evaluate("#{V0}", &ctx()).is_ok());
    // Exponential fan-out is linear thanks to value caching.
    let mut vars: Vec<(String, String)> = (0..40)
        .map(|i| (format!("W{i}"), format!("#{{W{}}}#{{W{}}}", i + 1, i + 1)))
        .collect();
    vars.push(("W40".to_string(), "".to_string()));
    let d: VariableDictionary = vars.into_iter().collect();
    assert_eq!(
        d.evaluate("#{W0}", &ctx()).map(|r| r.text),
        Ok(String::new())
    );
    // Odd bytes never panic.
    for t in [
        "#{",
        "#{[",
        "#{a[",
        "#{a[#{",
        "#{a | ",
        "#{a | F \"",
        "#{calc (",
        "#{calc 1/0}",
        "#{each",
        "#{if a ==",
        "}}}{{{#",
        "#{a.}",
        "#{é[ü]}",
        "#{calc 9999999999999999999%2}",
    ] {
        assert!(dict(&[("a", "1")]).evaluate(t, &ctx()).is_ok(), "{t}");
    }
}

#[test]
fn performance_smoke() {
    // A 10 KB script with 50 variables, evaluated many times.
    let vars: Vec<(String, String)> = (0..50)
        .map(|i| {
            (
                format!("Var{i}.Name"),
                format!("value {i} #{{Var{}.Name | ToUpper}}", (i + 1) % 50 + 50),
            )
        })
        .collect();
    let d: VariableDictionary = vars.into_iter().collect();
    let mut script = String::new();
    while script.len() < 10_000 {
        for i in 0..50 {
            script.push_str(&format!(
                "echo \"#{{Var{i}.Name}}\" # comment with # and ${{SHELL}}\n"
            ));
        }
    }
    let start = std::time::Instant::now();
    for _ in 0..20 {
        assert!(d.evaluate(&script, &ctx()).is_ok());
    }
    assert!(start.elapsed().as_secs() < 20);
}

#[test]
fn random_templates_never_panic() {
    // A deterministic pseudo-random mix of grammar fragments, filters and values.
    let pieces = [
        "#{",
        "}",
        "#",
        "##",
        "{",
        "[",
        "]",
        "|",
        " ",
        "\"",
        "\\\"",
        ".",
        "A",
        "B",
        "if ",
        "unless ",
        "each x in ",
        "#{/if}",
        "#{/each}",
        "#{else}",
        "#{elseif ",
        "==",
        "!=",
        "calc ",
        "(",
        ")",
        "+",
        "-",
        "*",
        "/",
        "%",
        "é",
        "\n",
        "'",
        ":",
        "0",
        "12",
        "-1",
        "utf8",
        "Format ",
        "Replace ",
        "Substring ",
        "Indent ",
        "Md5 ",
        "AddDays ",
        "UriPart ",
        "Host",
        "N2",
        "yyyy",
        "NowDate",
        "Json",
        "x.Key",
        "Octopus.Template.Each.Index",
    ];
    let vars: &[(&str, &str)] = &[
        ("A", "1"),
        ("B", "#{A}"),
        ("Json", "{\"a\": [1, {\"b\": null}], c: 'x'}"),
        ("List", "a,b,c"),
        ("L[x].Name", "#{B}"),
        ("D", "2030-05-22T09:05:00+02:00"),
        ("U", "https://user@host:8080/p%C3%A9?q#f"),
    ];
    let d = dict(vars);
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let len = next() % 24;
        let mut t = String::new();
        for _ in 0..len {
            let i = usize::try_from(next() % pieces.len() as u64).unwrap_or(0);
            t.push_str(pieces[i]);
        }
        let _ = d.evaluate(&t, &ctx());
    }
    let filters = [
        "ToLower",
        "ToBase64",
        "FromBase64",
        "HtmlEscape",
        "YamlDoubleQuoteEscape",
        "PropertiesValueEscape",
        "UriEscape",
        "Markdown",
        "Format",
        "Replace",
        "Match",
        "Substring",
        "Truncate",
        "Trim",
        "Indent",
        "UriPart",
        "VersionMajor",
        "VersionPreReleaseCounter",
        "Append",
        "Md5",
        "Sha512",
        "NowDateUtc",
        "AddDays",
        "AddMonths",
        "AddYears",
        "AddTimeSpan",
    ];
    let args = [
        "",
        " 1",
        " -5",
        " 99999999999",
        " utf8",
        " unicode",
        " \"[\"",
        " \"(a)\" \"$1$2\"",
        " N2",
        " C",
        " E",
        " \"0.0%\"",
        " 4/2",
        " Host",
        " \"99:99:99\"",
        " 2147483647",
    ];
    let values = [
        "",
        "x",
        "2030-05-22T09:05:00Z",
        "9999-12-31T23:59:59",
        "0001-01-01",
        "-1.5",
        "1e308",
        "https://h/",
        "é\u{1F600}",
        "[1,2]",
        "v1.2.3-a.b+c",
    ];
    for f in filters {
        for a in args {
            for v in values {
                let _ = dict(&[("V", v)]).evaluate(&format!("#{{V | {f}{a}}}"), &ctx());
            }
        }
    }
}
