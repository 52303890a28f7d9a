//! Tests of the public API: parse, validate, templates and plans, on the example documents
//! in `examples/workflows` and on hand-written edge cases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::error::FieldError;
use crate::execution::{StepCommand, StepCondition};
use serde_json::{Value, json};
use std::time::Duration;

const SMOKE: &str = include_str!("../../../../examples/workflows/smoke.yaml");
const FAILING_JUNIT: &str = include_str!("../../../../examples/workflows/failing-junit.yaml");
const PARAMETERISED: &str = include_str!("../../../../examples/workflows/parameterised.yaml");
const TEMPLATE_USER: &str = include_str!("../../../../examples/workflows/template-user.yaml");
const GIT_CONTENT: &str = include_str!("../../../../examples/workflows/git-content.yaml");
const GREETER: &str =
    include_str!("../../../../examples/workflows/templates/greeter-template.yaml");

/// Every file under examples/workflows, with the kind it holds.
const EXAMPLES: &[(&str, &str, ResourceKind)] = &[
    ("smoke.yaml", SMOKE, ResourceKind::Workflow),
    ("failing-junit.yaml", FAILING_JUNIT, ResourceKind::Workflow),
    ("parameterised.yaml", PARAMETERISED, ResourceKind::Workflow),
    ("template-user.yaml", TEMPLATE_USER, ResourceKind::Workflow),
    ("git-content.yaml", GIT_CONTENT, ResourceKind::Workflow),
    (
        "templates/greeter-template.yaml",
        GREETER,
        ResourceKind::Template,
    ),
];

fn workflow(source: &str) -> WorkflowDocument {
    parse(source, ResourceKind::Workflow).unwrap()
}

fn template(source: &str) -> WorkflowDocument {
    parse(source, ResourceKind::Template).unwrap()
}

fn invalid(result: Result<impl std::fmt::Debug>) -> Vec<FieldError> {
    match result {
        Err(Error::Invalid(errors)) => errors,
        other => panic!("expected Error::Invalid, got {other:?}"),
    }
}

fn paths(errors: &[FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.path.as_str()).collect()
}

fn no_templates() -> BTreeMap<String, WorkflowDocument> {
    BTreeMap::new()
}

fn config(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn shell_script(step: &crate::execution::PlannedStep) -> &str {
    match &step.command {
        Some(StepCommand::Shell { shell, script }) => {
            assert_eq!(shell, &["/bin/sh", "-e"]);
            script
        }
        other => panic!("expected a shell command, got {other:?}"),
    }
}

/// A minimal workflow around the given `spec` body (indented by two spaces).
fn wf(spec: &str) -> String {
    format!("kind: TestWorkflow\nmetadata:\n  name: t\nspec:\n{spec}")
}

// ---------------------------------------------------------------------------------------
// Examples
// ---------------------------------------------------------------------------------------

#[test]
fn every_example_parses_and_round_trips_through_json() {
    let on_disk: Vec<String> = {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/workflows");
        let mut files = Vec::new();
        for dir in [root.clone(), root.join("templates")] {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "yaml") {
                    files.push(
                        path.strip_prefix(&root)
                            .unwrap()
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
            }
        }
        files.sort();
        files
    };
    let mut listed: Vec<String> = EXAMPLES.iter().map(|(n, _, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "every example file must be listed in EXAMPLES"
    );

    for (name, source, kind) in EXAMPLES {
        let doc = parse(source, *kind).unwrap_or_else(|e| panic!("{name}: {e}"));
        let json = doc.to_json();
        assert_eq!(json["apiVersion"], "testworkflows.testkube.io/v1", "{name}");
        let again = parse(&serde_json::to_string(&json).unwrap(), *kind).unwrap();
        assert_eq!(
            again, doc,
            "{name}: to_json must parse back to the same document"
        );
    }
}

#[test]
fn smoke_example() {
    let doc = workflow(SMOKE);
    assert_eq!(doc.kind, ResourceKind::Workflow);
    assert_eq!(doc.name, "smoke");
    assert_eq!(
        doc.description,
        "A quick end-to-end check that a workflow runs and passes."
    );
    assert_eq!(
        doc.labels,
        [
            ("suite".to_string(), "smoke".to_string()),
            ("team".into(), "core".into())
        ]
        .into()
    );
    assert!(doc.template_names().is_empty());
    assert!(doc.execution_tags().is_empty());
    let built = build_plan(&doc, &no_templates(), &BTreeMap::new()).unwrap();
    assert!(built.config.is_empty());
    let plan = built.plan;
    assert!(plan.setup.is_empty() && plan.after.is_empty());
    assert_eq!(plan.steps.len(), 2);
    assert_eq!(plan.steps[0].reference, "1");
    assert_eq!(plan.steps[0].name, "Say hello");
    assert_eq!(shell_script(&plan.steps[0]), "echo \"hello from assay\"");
    assert_eq!(plan.steps[1].reference, "2");
    assert_eq!(
        shell_script(&plan.steps[1]),
        "result=$((2 + 3))\necho \"2 + 3 = $result\"\ntest \"$result\" -eq 5\n"
    );
    assert_eq!(plan.steps[1].condition, StepCondition::Passed);
    assert!(plan.secrets.is_empty());
    assert_eq!(plan.timeout, None);
}

#[test]
fn failing_junit_example() {
    let plan = build_plan(&workflow(FAILING_JUNIT), &no_templates(), &BTreeMap::new())
        .unwrap()
        .plan;
    assert_eq!(plan.steps.len(), 1);
    let step = &plan.steps[0];
    let artifacts = step.artifacts.as_ref().unwrap();
    assert_eq!(artifacts.paths, vec!["reports/*.xml"]);
    assert_eq!(artifacts.working_dir, None);
    let script = shell_script(step);
    assert!(script.contains("<testsuites name=\"calculator\" tests=\"3\" failures=\"1\""));
    assert!(script.contains("message=\"expected DivisionByZero, got 0\""));
    assert!(script.ends_with("exit 1\n"));
}

#[test]
fn parameterised_example_requires_the_password() {
    let doc = workflow(PARAMETERISED);
    let params = doc.parameters();
    assert_eq!(
        params.keys().collect::<Vec<_>>(),
        vec!["browser", "password", "retries", "verbose"]
    );
    assert!(params["password"].sensitive);
    let errors = invalid(build_plan(&doc, &no_templates(), &BTreeMap::new()));
    assert_eq!(
        errors,
        vec![FieldError {
            path: "config.password".into(),
            message: "required: the parameter has no default (Password of the test account \
                      (required, masked in logs))"
                .into()
        }]
    );
}

#[test]
fn parameterised_example_plan() {
    let doc = workflow(PARAMETERISED);
    let password = "$(touch /tmp/pwned); rm -rf ~ 'x'";
    let built = build_plan(
        &doc,
        &no_templates(),
        &config(&[
            ("password", json!(password)),
            ("browser", json!("firefox")),
            ("retries", json!("3")),
            ("verbose", json!("true")),
        ]),
    )
    .unwrap();
    assert_eq!(
        built.config,
        [
            (
                "browser".to_string(),
                ConfigValue {
                    value: json!("firefox"),
                    sensitive: false
                }
            ),
            (
                "password".into(),
                ConfigValue {
                    value: json!("***"),
                    sensitive: true
                }
            ),
            (
                "retries".into(),
                ConfigValue {
                    value: json!(3),
                    sensitive: false
                }
            ),
            (
                "verbose".into(),
                ConfigValue {
                    value: json!(true),
                    sensitive: false
                }
            ),
        ]
        .into()
    );
    let plan = &built.plan;
    // The value as given, as quoted in scripts, as escaped in here-documents.
    assert_eq!(
        plan.secrets,
        vec![
            "$(touch /tmp/pwned); rm -rf ~ '\\''x'\\''".to_string(),
            "\\$(touch /tmp/pwned); rm -rf ~ 'x'".to_string(),
            password.to_string(),
        ]
    );
    assert_eq!(
        plan.env,
        [("BROWSER".to_string(), "firefox".to_string())].into()
    );
    assert_eq!(
        shell_script(&plan.steps[0]),
        "echo \"browser=\"'firefox'\" retries=3 verbose=true\"\ntest \"$BROWSER\" = 'firefox'\n"
    );
    let login = shell_script(&plan.steps[1]);
    let quoted = "'$(touch /tmp/pwned); rm -rf ~ '\\''x'\\'''";
    assert!(login.contains(&format!("password={quoted}\n")), "{login}");
    assert!(
        login.contains("if [ true = true ]; then set -x; fi"),
        "{login}"
    );
    assert!(
        login.contains("while [ \"$attempt\" -lt 3 ]; do"),
        "{login}"
    );
    assert!(
        login.contains(&format!("logging in with password \"{quoted}\"\"\n")),
        "{login}"
    );
    assert_eq!(plan.steps[1].timeout, Some(Duration::from_secs(60)));

    // What may be stored: no trace of the password, raw or quoted.
    let masked = masked_plan(plan).to_string();
    assert!(!masked.contains("touch /tmp/pwned"), "{masked}");
    assert!(masked.contains("password='***'"), "{masked}");
    assert!(
        masked.contains("logging in with password \\\"'***'\\\"\\\""),
        "{masked}"
    );
    assert_eq!(
        mask_secrets(
            &format!("attempt 1: logging in with password {password}"),
            &plan.secrets
        ),
        "attempt 1: logging in with password ***"
    );
}

#[test]
fn parameterised_config_errors_are_all_reported() {
    let doc = workflow(PARAMETERISED);
    let errors = invalid(build_plan(
        &doc,
        &no_templates(),
        &config(&[
            ("browser", json!("safari")),
            ("retries", json!("many")),
            ("verbose", json!("yes")),
            ("password", json!("a\0b")),
            ("colour", json!("red")),
        ]),
    ));
    assert_eq!(
        errors,
        vec![
            FieldError {
                path: "config.colour".into(),
                message: "unknown parameter; known parameters: browser, password, retries, verbose"
                    .into()
            },
            FieldError {
                path: "config.browser".into(),
                message: "\"safari\" is not one of \"chrome\", \"firefox\"".into()
            },
            FieldError {
                path: "config.password".into(),
                message: "must not contain NUL characters".into()
            },
            FieldError {
                path: "config.retries".into(),
                message: "\"many\" is not an integer".into()
            },
            FieldError {
                path: "config.verbose".into(),
                message: "\"yes\" is not a boolean".into()
            },
        ]
    );
    let errors = invalid(build_plan(
        &doc,
        &no_templates(),
        &config(&[("password", json!("x")), ("retries", json!(9))]),
    ));
    assert_eq!(errors[0].path, "config.retries");
    assert_eq!(errors[0].message, "must be at most 5");
}

#[test]
fn template_user_example() {
    let doc = workflow(TEMPLATE_USER);
    assert_eq!(doc.template_names(), vec!["greeter"]);
    let greeter = template(GREETER);
    assert_eq!(greeter.kind, ResourceKind::Template);
    let templates: BTreeMap<String, WorkflowDocument> = [("greeter".to_string(), greeter)].into();
    let built = build_plan(&doc, &templates, &config(&[("team", json!("QA's"))])).unwrap();
    let plan = &built.plan;

    // The template's setup and steps come first; its file and env are merged.
    assert_eq!(plan.setup.len(), 1);
    assert_eq!(plan.setup[0].reference, "setup.1");
    assert_eq!(plan.setup[0].name, "Prepare the output directory");
    assert_eq!(plan.files.len(), 1);
    assert_eq!(plan.files[0].path, "greeter/greet.sh");
    assert_eq!(plan.files[0].mode, Some(0o755));
    assert!(plan.files[0].content.starts_with("#!/bin/sh\n"));
    assert_eq!(
        plan.env,
        [("GREETER_VERSION".to_string(), "1".to_string())].into()
    );

    let names: Vec<(&str, &str)> = plan
        .all_steps()
        .iter()
        .map(|s| (s.reference.as_str(), s.name.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("setup.1", "Prepare the output directory"),
            ("1", "Greet"),
            ("2", "Check the greeting"),
            ("3", "Greet once more"),
            ("3.1", "Prepare the output directory"),
            ("3.2", "Greet"),
        ]
    );
    // The template's parameters come from `use.config`, itself using the workflow's config.
    assert_eq!(
        shell_script(&plan.steps[0]),
        "./greeter/greet.sh 2 'QA'\\''s team' | tee out/greeting.txt"
    );
    assert!(shell_script(&plan.steps[1]).contains("grep -q \"hello, \"'QA'\\''s'\" team\""));
    // Step-level use: defaults apply where `use.config` gives nothing; the template's env
    // reaches its nested steps.
    let group = &plan.steps[2];
    assert!(group.command.is_none());
    assert_eq!(
        shell_script(&group.steps[1]),
        "./greeter/greet.sh 1 'again' | tee out/greeting.txt"
    );
    assert_eq!(group.steps[1].env["GREETER_VERSION"], "1");
    assert_eq!(group.steps[0].condition, StepCondition::Passed);
}

#[test]
fn git_content_example() {
    let doc = workflow(GIT_CONTENT);
    let errors = invalid(build_plan(&doc, &no_templates(), &BTreeMap::new()));
    assert_eq!(paths(&errors), vec!["config.repo"]);

    let built = build_plan(
        &doc,
        &no_templates(),
        &config(&[("repo", json!("file:///tmp/tests.git"))]),
    )
    .unwrap();
    let git = built.plan.git.as_ref().unwrap();
    assert_eq!(git.uri, "file:///tmp/tests.git");
    assert_eq!(git.revision.as_deref(), Some("main"));
    assert_eq!(git.paths, vec!["tests"]);
    assert_eq!(git.mount_path, "repo");
    assert_eq!(built.plan.working_dir.as_deref(), Some("repo"));
    assert_eq!(built.plan.timeout, Some(Duration::from_secs(300)));

    // A caller cannot smuggle git options or remote helpers through the URL or revision.
    for (key, value, path) in [
        (
            "repo",
            "--upload-pack=touch /tmp/pwned",
            "spec.content.git.uri",
        ),
        (
            "repo",
            "ext::sh -c touch% /tmp/pwned",
            "spec.content.git.uri",
        ),
        ("revision", "--output=/tmp/x", "spec.content.git.revision"),
    ] {
        let mut given = config(&[("repo", json!("file:///tmp/tests.git"))]);
        given.insert(key.into(), json!(value));
        let errors = invalid(build_plan(&doc, &no_templates(), &given));
        assert_eq!(paths(&errors), vec![path], "{value}");
    }
}

// ---------------------------------------------------------------------------------------
// Parsing and validation
// ---------------------------------------------------------------------------------------

#[test]
fn too_large_is_rejected_before_parsing() {
    let big = format!("{}\n", "#".repeat(10 * 1024 * 1024));
    match parse(&big, ResourceKind::Workflow) {
        Err(Error::TooLarge(msg)) => assert_eq!(
            msg,
            "the document is 10485761 bytes; the limit is 1048576 bytes"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn kind_and_api_version() {
    // kind may be left out: the expected one is assumed.
    let doc = parse(
        "metadata: {name: a}\nspec:\n  steps: [{shell: echo}]\n",
        ResourceKind::Workflow,
    )
    .unwrap();
    assert_eq!(doc.to_json()["kind"], "TestWorkflow");
    let errors = invalid(parse(SMOKE, ResourceKind::Template));
    assert_eq!(
        errors,
        vec![FieldError {
            path: "kind".into(),
            message: "expected TestWorkflowTemplate, got TestWorkflow".into()
        }]
    );
    let errors = invalid(parse(
        "apiVersion: testworkflows.testkube.io/v2\nkind: Workflow\nmetadata: {name: a}\nspec:\n  steps: [{shell: echo}]\n",
        ResourceKind::Workflow,
    ));
    assert_eq!(paths(&errors), vec!["apiVersion", "kind"]);
}

#[test]
fn unknown_fields_are_errors_with_path_and_location() {
    let errors = invalid(parse(
        &wf("  steps:\n    - shell: echo\n      timout: 5s\n"),
        ResourceKind::Workflow,
    ));
    assert_eq!(paths(&errors), vec!["spec.steps[0].timout"]);
    assert!(
        errors[0]
            .message
            .starts_with("unknown field `timout`, expected one of"),
        "{}",
        errors[0].message
    );
    assert!(
        errors[0].message.ends_with("at line 7, column 7"),
        "{}",
        errors[0].message
    );

    for (spec, path) in [
        ("  steps: [{shell: echo}]\n  contnet: {}\n", "spec.contnet"),
        (
            "  steps: [{shell: echo}]\n  container: {envs: []}\n",
            "spec.container.envs",
        ),
        (
            "  steps: [{shell: echo, retry: {count: 1, until: x}}]\n",
            "spec.steps[0].retry.until",
        ),
        (
            "  steps: [{shell: echo, env: [{name: A, valueFrom: {}}]}]\n",
            "spec.steps[0].env[0].valueFrom",
        ),
        (
            "  config: {a: {type: string, defualt: x}}\n  steps: [{shell: echo}]\n",
            "spec.config.a.defualt",
        ),
        (
            "  steps: [{shell: echo, artifacts: {paths: [a], compress: {}}}]\n",
            "spec.steps[0].artifacts.compress",
        ),
    ] {
        let errors = invalid(parse(&wf(spec), ResourceKind::Workflow));
        assert_eq!(paths(&errors), vec![path], "{spec}");
    }
    let errors = invalid(parse(
        "kind: TestWorkflow\nmetadata: {name: t, namespace: testkube}\nspec:\n  steps: [{shell: echo}]\n",
        ResourceKind::Workflow,
    ));
    assert_eq!(paths(&errors), vec!["metadata.namespace"]);
}

#[test]
fn type_errors_carry_the_path() {
    for (spec, path) in [
        (
            "  steps: [{shell: echo, condition: sometimes}]\n",
            "spec.steps[0].condition",
        ),
        (
            "  config: {a: {type: text}}\n  steps: [{shell: echo}]\n",
            "spec.config.a.type",
        ),
        (
            "  steps: [{shell: echo, retry: {count: -1}}]\n",
            "spec.steps[0].retry.count",
        ),
        ("  steps: [{shell: [echo]}]\n", "spec.steps[0].shell"),
        ("  steps: [{run: 3}]\n", "spec.steps[0].run"),
    ] {
        let errors = invalid(parse(&wf(spec), ResourceKind::Workflow));
        assert_eq!(paths(&errors), vec![path], "{spec}: {errors:?}");
        assert!(errors[0].message.contains("at line"), "{errors:?}");
    }
}

/// Real Testkube documents carry Kubernetes fields Assay keeps for later; they must load.
#[test]
fn testkube_kubernetes_fields_are_kept_opaque() {
    let source = r#"
apiVersion: testworkflows.testkube.io/v1
kind: TestWorkflow
metadata:
  name: k6-smoke
  labels:
    core-tests: workflows
spec:
  system:
    pureByDefault: true
  events:
    - cronjob:
        cron: "35 */4 * * *"
  pod:
    serviceAccountName: tests
  job:
    activeDeadlineSeconds: 600
  services:
    db:
      image: postgres:16
  notifications:
    - slack: {channel: tests}
  container:
    image: grafana/k6:0.49.0
    imagePullPolicy: IfNotPresent
    workingDir: /data/repo
    resources:
      requests: {cpu: 128m, memory: 128Mi}
    securityContext:
      runAsUser: 1000
    env:
      - name: K6_WEB_DASHBOARD
        value: "true"
  steps:
    - name: Run test
      run:
        image: grafana/k6:0.49.0
        shell: k6 run smoke.js
      container:
        resources:
          limits: {cpu: 500m}
"#;
    let doc = workflow(source);
    let spec = doc.spec();
    assert_eq!(spec.pod, Some(json!({"serviceAccountName": "tests"})));
    assert_eq!(spec.system, Some(json!({"pureByDefault": true})));
    let container = spec.container.as_ref().unwrap();
    assert_eq!(container.image.as_deref(), Some("grafana/k6:0.49.0"));
    assert_eq!(
        container.resources,
        Some(json!({"requests": {"cpu": "128m", "memory": "128Mi"}}))
    );
    let json = doc.to_json();
    assert_eq!(json["spec"]["job"], json!({"activeDeadlineSeconds": 600}));
    assert_eq!(
        json["spec"]["steps"][0]["run"]["image"],
        "grafana/k6:0.49.0"
    );
    let plan = build_plan(&doc, &no_templates(), &BTreeMap::new())
        .unwrap()
        .plan;
    assert_eq!(shell_script(&plan.steps[0]), "k6 run smoke.js");
    assert_eq!(plan.working_dir.as_deref(), Some("/data/repo"));
    assert_eq!(plan.env["K6_WEB_DASHBOARD"], "true");
}

#[test]
fn semantic_errors_are_all_collected() {
    let source = r#"
kind: TestWorkflow
metadata:
  name: Bad_Name
  labels:
    "team": "has space"
spec:
  config:
    x: {type: integer, default: "three"}
  steps:
    - shell: echo {{config.nope}}
    - shell: echo ok
      timeout: 5x
    - shell: echo ok
      env: [{name: 1BAD, value: x}]
    - run: {args: [a]}
    - shell: echo
      run: {shell: echo}
    - shell: echo
      artifacts: {paths: [/etc/passwd, ../up]}
    - name: ""
      steps: []
    - shell: echo
      steps: [{shell: echo}]
    - use: [{name: Not_A_Template}]
  content:
    files:
      - {path: a.txt, content: "{{ env.HOME }}"}
      - {path: a.txt}
      - {path: /abs}
    git: {uri: "--upload-pack=x", mountPath: ../repo}
"#;
    let errors = invalid(parse(source, ResourceKind::Workflow));
    let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let want = vec![
        "metadata.name: \"Bad_Name\" is not a valid name (1-63 lowercase letters, digits and '-', starting and ending with a letter or digit)",
        "metadata.labels.team: \"has space\" is not a valid label value (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)",
        "spec.config.x.default: \"three\" is not an integer",
        "spec.content.files[0].content: unsupported expression \"{{ env.HOME }}\": only {{config.<name>}} and string literals such as {{\"{{\"}} are supported",
        "spec.content.files[1].path: \"a.txt\" is listed twice",
        "spec.content.files[2].path: \"/abs\" is absolute; paths are relative to the workspace",
        "spec.content.git.uri: \"--upload-pack=x\" must not start with '-'",
        "spec.content.git.mountPath: \"../repo\" leaves the workspace (..)",
        "spec.steps[0].shell: {{config.nope}} refers to an unknown parameter; known parameters: x",
        "spec.steps[1].timeout: \"5x\" is not a duration (use e.g. \"30s\", \"5m\", \"1h30m\", \"500ms\")",
        "spec.steps[2].env[0].name: \"1BAD\" is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
        "spec.steps[3].run.args: args needs command (there is no image entrypoint to pass them to)",
        "spec.steps[4].shell: give the script once: either shell or run.shell",
        "spec.steps[5].artifacts.paths[0]: \"/etc/passwd\" is absolute; paths are relative to the workspace",
        "spec.steps[5].artifacts.paths[1]: \"../up\" leaves the workspace (..)",
        "spec.steps[6].name: must not be empty",
        "spec.steps[6]: a step needs shell, run, steps, use, template or artifacts",
        "spec.steps[7]: a step either runs a command (shell/run) or contains steps (steps/use/template), not both",
        "spec.steps[8].use[0].name: \"Not_A_Template\" is not a valid template name",
    ];
    assert_eq!(got, want);
}

#[test]
fn unsafe_script_contexts_are_parse_errors() {
    let errors = invalid(parse(
        &wf(
            "  config: {x: {type: string}, n: {type: integer, default: 1}}\n  steps:\n    - shell: echo `echo {{config.x}}` $(( {{config.n}} + 1 ))\n",
        ),
        ResourceKind::Workflow,
    ));
    assert_eq!(paths(&errors), vec!["spec.steps[0].shell"]);
    assert!(
        errors[0]
            .message
            .starts_with("{{config.x}} is inside `...`"),
        "{errors:?}"
    );
}

#[test]
fn expression_in_program_name_is_rejected() {
    let errors = invalid(parse(
        &wf(
            "  config: {tool: {default: ls}}\n  steps:\n    - run: {command: [\"{{config.tool}}\", -l]}\n",
        ),
        ResourceKind::Workflow,
    ));
    assert_eq!(
        errors,
        vec![FieldError {
            path: "spec.steps[0].run.command[0]".into(),
            message: "the program must be written literally, not chosen by an expression".into()
        }]
    );
}

#[test]
fn workflow_needs_steps_and_names_are_limited() {
    let errors = invalid(parse(
        &wf("  setup: [{shell: echo}]\n"),
        ResourceKind::Workflow,
    ));
    assert_eq!(paths(&errors), vec!["spec.steps"]);
    // A template may be only setup or content.
    parse(
        "kind: TestWorkflowTemplate\nmetadata: {name: t}\nspec:\n  setup: [{shell: echo}]\n",
        ResourceKind::Template,
    )
    .unwrap();
    let long = "n".repeat(MAX_NAME_CHARS + 1);
    let errors = invalid(parse(
        &wf(&format!("  steps: [{{name: {long}, shell: echo}}]\n")),
        ResourceKind::Workflow,
    ));
    assert_eq!(
        errors,
        vec![FieldError {
            path: "spec.steps[0].name".into(),
            message: "is longer than 200 characters".into()
        }]
    );
    parse(
        &wf(&format!(
            "  steps: [{{name: \"{}\", shell: echo}}]\n",
            "ñ".repeat(200)
        )),
        ResourceKind::Workflow,
    )
    .unwrap();
}

#[test]
fn step_count_and_depth_are_bounded() {
    let many: String = (0..=MAX_STEPS).map(|_| "    - shell: echo\n").collect();
    let errors = invalid(parse(
        &wf(&format!("  steps:\n{many}")),
        ResourceKind::Workflow,
    ));
    assert_eq!(
        errors,
        vec![FieldError {
            path: "spec".into(),
            message: "501 steps; the limit is 500".into()
        }]
    );
    let nested = |levels: usize| {
        let mut s = String::from("{shell: echo}");
        for _ in 1..levels {
            s = format!("{{steps: [{s}]}}");
        }
        wf(&format!("  steps: [{s}]\n"))
    };
    parse(&nested(MAX_STEP_DEPTH), ResourceKind::Workflow).unwrap();
    let errors = invalid(parse(&nested(MAX_STEP_DEPTH + 1), ResourceKind::Workflow));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].message, "steps are nested deeper than 16 levels");
}

#[test]
fn deepest_steps_with_kubernetes_fields_fit_the_yaml_depth_limit() {
    let mut s = String::from(
        "{shell: echo, env: [{name: A, value: b}], container: {securityContext: {capabilities: {add: [NET_ADMIN]}}}, use: [{name: t, config: {a: b}}]}",
    );
    for _ in 1..MAX_STEP_DEPTH {
        s = format!("{{name: g, steps: [{s}]}}");
    }
    let source = wf(&format!("  steps: [{s}]\n"));
    let errors = invalid(parse(&source, ResourceKind::Workflow));
    // Only the semantic error (shell with use), no YAML depth error.
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .message
            .starts_with("a step either runs a command")
    );
}

#[test]
fn json_documents_and_env_maps() {
    let source = r#"{
      "kind": "TestWorkflow",
      "metadata": {"name": "json-doc", "description": "from JSON"},
      "spec": {
        "container": {"env": {"B": "2", "A": "1"}},
        "steps": [{"run": {"command": ["printf", "%s"], "args": ["{{config.x}}"], "env": {"X": "{{config.x}}"}}}],
        "config": {"x": {"default": "a b; $(c)"}}
      }
    }"#;
    let doc = workflow(source);
    assert_eq!(doc.description, "from JSON");
    let plan = build_plan(&doc, &no_templates(), &BTreeMap::new())
        .unwrap()
        .plan;
    // No shell: values pass verbatim.
    assert_eq!(
        plan.steps[0].command,
        Some(StepCommand::Exec {
            command: vec!["printf".into(), "%s".into(), "a b; $(c)".into()]
        })
    );
    assert_eq!(plan.steps[0].env["X"], "a b; $(c)");
    assert_eq!(plan.steps[0].name, "printf %s {{config.x}}");
    assert_eq!(
        plan.env,
        [("A".to_string(), "1".to_string()), ("B".into(), "2".into())].into()
    );
}

#[test]
fn multiple_documents_are_rejected() {
    let errors = invalid(parse(
        &format!("{SMOKE}---\n{SMOKE}"),
        ResourceKind::Workflow,
    ));
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]
            .message
            .starts_with("the input holds more than one YAML document"),
        "{errors:?}"
    );
}

#[test]
fn description_at_top_level_like_testkube() {
    let doc = workflow(
        "kind: TestWorkflow\nmetadata: {name: t}\ndescription: Top level\nspec:\n  steps: [{shell: echo}]\n",
    );
    assert_eq!(doc.description, "Top level");
    assert_eq!(doc.to_json()["metadata"]["description"], "Top level");
    let errors = invalid(parse(
        "kind: TestWorkflow\nmetadata: {name: t, description: a}\ndescription: b\nspec:\n  steps: [{shell: echo}]\n",
        ResourceKind::Workflow,
    ));
    assert_eq!(paths(&errors), vec!["description"]);
}

// ---------------------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------------------

#[test]
fn references_names_conditions_and_step_settings() {
    let source = wf(r#"  setup:
    - shell: |

        mkdir -p out   
        echo more
  steps:
    - name: group
      env: {G: g, SHARED: group}
      workingDir: sub
      steps:
        - shell: echo {{config.x}}
          env: {SHARED: child}
        - run: {command: [ls, -la]}
          workingDir: other
    - artifacts: {paths: ["out/**"], workingDir: out}
    - shell: echo cleanup
      condition: always
      timeout: 1h30m
      retry: {count: 2}
      optional: true
      negative: true
    - steps: [{steps: [{shell: echo}]}]
  after:
    - shell: echo bye
  config:
    x: {default: "it's"}
"#);
    let plan = build_plan(&workflow(&source), &no_templates(), &BTreeMap::new())
        .unwrap()
        .plan;
    let refs: Vec<(&str, &str, StepCondition)> = plan
        .all_steps()
        .iter()
        .map(|s| (s.reference.as_str(), s.name.as_str(), s.condition))
        .collect();
    assert_eq!(
        refs,
        vec![
            ("setup.1", "mkdir -p out", StepCondition::Passed),
            ("1", "group", StepCondition::Passed),
            ("1.1", "echo {{config.x}}", StepCondition::Passed),
            ("1.2", "ls -la", StepCondition::Passed),
            ("2", "artifacts", StepCondition::Always),
            ("3", "echo cleanup", StepCondition::Always),
            ("4", "step 4", StepCondition::Passed),
            ("4.1", "step 4.1", StepCondition::Passed),
            ("4.1.1", "echo", StepCondition::Passed),
            ("after.1", "echo bye", StepCondition::Passed),
        ]
    );
    let group = &plan.steps[0];
    assert_eq!(group.working_dir.as_deref(), Some("sub"));
    assert_eq!(
        group.steps[0].env,
        [
            ("G".to_string(), "g".to_string()),
            ("SHARED".into(), "child".into())
        ]
        .into()
    );
    assert_eq!(group.steps[0].working_dir.as_deref(), Some("sub"));
    assert_eq!(shell_script(&group.steps[0]), "echo 'it'\\''s'");
    assert_eq!(group.steps[1].working_dir.as_deref(), Some("other"));
    assert_eq!(group.steps[1].env["SHARED"], "group");
    let artifacts = plan.steps[1].artifacts.as_ref().unwrap();
    assert_eq!(artifacts.paths, vec!["out/**"]);
    assert_eq!(artifacts.working_dir.as_deref(), Some("out"));
    assert!(plan.steps[1].command.is_none() && plan.steps[1].steps.is_empty());
    let s = &plan.steps[2];
    assert_eq!(s.timeout, Some(Duration::from_secs(5400)));
    assert_eq!(s.retries, 2);
    assert!(s.optional && s.negative);
}

#[test]
fn exec_shell_scripts_are_quoted_but_plain_arguments_are_not() {
    let source = wf(r#"  config:
    x: {default: "$(id)"}
  steps:
    - run:
        command: [/bin/sh, -c]
        args: ["echo {{config.x}}", "{{config.x}}"]
    - run: {command: [echo, "{{config.x}}"]}
"#);
    let plan = build_plan(&workflow(&source), &no_templates(), &BTreeMap::new())
        .unwrap()
        .plan;
    assert_eq!(
        plan.steps[0].command,
        Some(StepCommand::Exec {
            command: vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo '$(id)'".into(),
                "$(id)".into()
            ]
        })
    );
    assert_eq!(
        plan.steps[1].command,
        Some(StepCommand::Exec {
            command: vec!["echo".into(), "$(id)".into()]
        })
    );
}

#[test]
fn shell_script_files_get_quoting_other_files_verbatim() {
    let source = wf(r#"  config:
    x: {default: "a'b $(c)"}
  content:
    files:
      - {path: ./run.sh, content: "echo {{config.x}}\n", mode: 0755}
      - {path: data.json, content: "{\"x\": \"{{config.x}}\"}"}
  steps: [{shell: sh run.sh}]
"#);
    let plan = build_plan(&workflow(&source), &no_templates(), &BTreeMap::new())
        .unwrap()
        .plan;
    assert_eq!(plan.files[0].path, "run.sh");
    assert_eq!(plan.files[0].content, "echo 'a'\\''b $(c)'\n");
    assert_eq!(plan.files[0].mode, Some(0o755));
    assert_eq!(plan.files[1].content, "{\"x\": \"a'b $(c)\"}");
    assert_eq!(plan.files[1].mode, None);
}

#[test]
fn artifact_paths_from_config_are_checked_after_substitution() {
    let source = wf(r#"  config:
    dir: {default: reports}
  steps:
    - shell: echo
      artifacts: {paths: ["{{config.dir}}/*.xml"]}
"#);
    let doc = workflow(&source);
    let plan = build_plan(&doc, &no_templates(), &BTreeMap::new())
        .unwrap()
        .plan;
    assert_eq!(
        plan.steps[0].artifacts.as_ref().unwrap().paths,
        vec!["reports/*.xml"]
    );
    let errors = invalid(build_plan(
        &doc,
        &no_templates(),
        &config(&[("dir", json!("../../etc"))]),
    ));
    assert_eq!(
        errors,
        vec![FieldError {
            path: "spec.steps[0].artifacts.paths[0]".into(),
            message: "\"../../etc/*.xml\" leaves the workspace (..)".into()
        }]
    );
}

#[test]
fn here_document_values_with_newlines_are_rejected_at_run() {
    let source = wf(r#"  config:
    x: {default: ok}
  steps:
    - shell: |
        cat <<EOF
        {{config.x}}
        EOF
"#);
    let doc = workflow(&source);
    let plan = build_plan(&doc, &no_templates(), &BTreeMap::new())
        .unwrap()
        .plan;
    assert_eq!(shell_script(&plan.steps[0]), "cat <<EOF\nok\nEOF\n");
    let errors = invalid(build_plan(
        &doc,
        &no_templates(),
        &config(&[("x", json!("a\nEOF\ntouch /tmp/pwned"))]),
    ));
    assert_eq!(paths(&errors), vec!["spec.steps[0].shell"]);
    assert!(errors[0].message.contains("line break"), "{errors:?}");
}

#[test]
fn template_cannot_run_by_itself() {
    let errors = invalid(build_plan(
        &template(GREETER),
        &no_templates(),
        &BTreeMap::new(),
    ));
    assert_eq!(paths(&errors), vec!["kind"]);
}

// ---------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------

fn tpl(name: &str, spec: &str) -> WorkflowDocument {
    template(&format!(
        "kind: TestWorkflowTemplate\nmetadata:\n  name: {name}\nspec:\n{spec}"
    ))
}

fn templates(list: Vec<WorkflowDocument>) -> BTreeMap<String, WorkflowDocument> {
    list.into_iter().map(|t| (t.name.clone(), t)).collect()
}

#[test]
fn missing_template_names_the_path() {
    let doc = workflow(&wf(
        "  use: [{name: base}]\n  steps:\n    - shell: echo\n    - use: [{name: other}]\n",
    ));
    assert_eq!(doc.template_names(), vec!["base", "other"]);
    let errors = invalid(build_plan(&doc, &no_templates(), &BTreeMap::new()));
    let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        vec![
            "spec.use[0].name: template \"base\" not found",
            "spec.steps[1].use[0].name: template \"other\" not found",
        ]
    );
}

#[test]
fn template_cycles_and_depth() {
    let a = tpl("a", "  use: [{name: b}]\n  steps: [{shell: echo a}]\n");
    let b = tpl("b", "  steps:\n    - use: [{name: a}]\n");
    let doc = workflow(&wf("  use: [{name: a}]\n  steps: [{shell: echo}]\n"));
    assert_eq!(doc.template_names(), vec!["a"]);
    let errors = invalid(build_plan(&doc, &templates(vec![a, b]), &BTreeMap::new()));
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec!["templates[b].spec.steps[0].use[0].name: template \"a\" uses itself (a → b → a)"]
    );

    // A chain of 11 templates is one too deep; 10 is fine.
    let chain: Vec<WorkflowDocument> = (0..11)
        .map(|i| {
            if i == 10 {
                tpl(&format!("t{i}"), "  steps: [{shell: echo}]\n")
            } else {
                tpl(
                    &format!("t{i}"),
                    &format!("  use: [{{name: t{}}}]\n", i + 1),
                )
            }
        })
        .collect();
    let all = templates(chain);
    let deep = workflow(&wf("  use: [{name: t0}]\n  steps: [{shell: echo}]\n"));
    let errors = invalid(build_plan(&deep, &all, &BTreeMap::new()));
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec!["templates[t9].spec.use[0].name: templates are nested deeper than 10 levels"]
    );
    let shallow = workflow(&wf("  use: [{name: t1}]\n  steps: [{shell: echo}]\n"));
    let plan = build_plan(&shallow, &all, &BTreeMap::new()).unwrap().plan;
    assert_eq!(plan.steps.len(), 2);
}

#[test]
fn template_fan_out_is_bounded() {
    // Each template uses the next one ten times: 10^9 copies if nothing stopped it.
    let list: Vec<WorkflowDocument> = (0..9)
        .map(|i| {
            let uses = vec![format!("{{name: f{}}}", i + 1); 10].join(", ");
            if i == 8 {
                tpl(&format!("f{i}"), "  steps: [{shell: echo}]\n")
            } else {
                tpl(&format!("f{i}"), &format!("  use: [{uses}]\n"))
            }
        })
        .collect();
    let doc = workflow(&wf("  use: [{name: f0}]\n  steps: [{shell: echo}]\n"));
    let started = std::time::Instant::now();
    let errors = invalid(build_plan(&doc, &templates(list), &BTreeMap::new()));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("the plan would be too large")
                || e.message.contains("steps once templates are expanded")),
        "{errors:?}"
    );
}

#[test]
fn template_config_errors_name_the_use_entry() {
    let greeter = template(GREETER);
    let doc = workflow(&wf(
        "  use: [{name: greeter, config: {whom: x, times: many}}]\n  steps: [{shell: echo}]\n",
    ));
    let errors = invalid(build_plan(
        &doc,
        &templates(vec![greeter]),
        &BTreeMap::new(),
    ));
    let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        vec![
            "spec.use[0].config.whom: unknown parameter; known parameters: times, who",
            "spec.use[0].config.times: \"many\" is not an integer",
        ]
    );
    // `use.config` may only refer to the user's own parameters.
    let errors = invalid(parse(
        &wf(
            "  use: [{name: greeter, config: {who: \"{{config.nope}}\"}}]\n  steps: [{shell: echo}]\n",
        ),
        ResourceKind::Workflow,
    ));
    assert_eq!(paths(&errors), vec!["spec.use[0].config.who"]);
}

#[test]
fn workflow_is_not_a_template() {
    let other = workflow(SMOKE);
    let doc = workflow(&wf("  use: [{name: smoke}]\n  steps: [{shell: echo}]\n"));
    let errors = invalid(build_plan(&doc, &templates(vec![other]), &BTreeMap::new()));
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec!["spec.use[0].name: \"smoke\" is a workflow, not a template"]
    );
}

#[test]
fn template_merging_rules() {
    let base = tpl(
        "base",
        r#"  config:
    token: {sensitive: true, default: tpl-secret}
    level: {type: integer, default: 1}
  content:
    files:
      - {path: shared.txt, content: from template}
      - {path: only-template.txt, content: "level {{config.level}}"}
  container:
    workingDir: tpl-dir
    env: [{name: A, value: template}, {name: B, value: template}]
  setup: [{shell: echo tpl setup}]
  steps: [{shell: "echo tpl step {{config.token}}"}]
  after: [{shell: echo tpl after}]
"#,
    );
    let doc = workflow(&wf(r#"  use: [{name: base, config: {level: 3}}]
  content:
    files:
      - {path: shared.txt, content: from workflow}
  container:
    env: {B: workflow}
  setup: [{shell: echo own setup}]
  steps: [{shell: echo own step}]
  after: [{shell: echo own after}]
"#));
    let plan = build_plan(&doc, &templates(vec![base]), &BTreeMap::new())
        .unwrap()
        .plan;
    let scripts: Vec<(&str, &str)> = plan
        .all_steps()
        .into_iter()
        .map(|s| (s.reference.as_str(), shell_script(s)))
        .collect();
    assert_eq!(
        scripts,
        vec![
            ("setup.1", "echo tpl setup"),
            ("setup.2", "echo own setup"),
            ("1", "echo tpl step 'tpl-secret'"),
            ("2", "echo own step"),
            ("after.1", "echo tpl after"),
            ("after.2", "echo own after"),
        ]
    );
    let files: Vec<(&str, &str)> = plan
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.content.as_str()))
        .collect();
    assert_eq!(
        files,
        vec![
            ("only-template.txt", "level 3"),
            ("shared.txt", "from workflow")
        ]
    );
    assert_eq!(
        plan.env,
        [
            ("A".to_string(), "template".to_string()),
            ("B".into(), "workflow".into())
        ]
        .into()
    );
    assert_eq!(plan.working_dir.as_deref(), Some("tpl-dir"));
    // The template's sensitive value is masked like the workflow's own.
    assert_eq!(plan.secrets, vec!["tpl-secret".to_string()]);
}

#[test]
fn step_level_template_env_and_after_steps() {
    let t = tpl(
        "t",
        r#"  container:
    env: [{name: FROM, value: template}, {name: LEVEL, value: template}]
    workingDir: tdir
  steps: [{shell: echo in}]
  after: [{shell: echo out}]
"#,
    );
    let doc = workflow(&wf(r#"  steps:
    - template: {name: t}
      env: {LEVEL: step}
"#));
    let plan = build_plan(&doc, &templates(vec![t]), &BTreeMap::new())
        .unwrap()
        .plan;
    assert!(
        plan.env.is_empty(),
        "step-level template env stays with its steps"
    );
    let group = &plan.steps[0];
    assert_eq!(group.name, "t");
    assert_eq!(group.steps.len(), 2);
    assert_eq!(
        group.steps[0].env,
        [
            ("FROM".to_string(), "template".to_string()),
            ("LEVEL".into(), "step".into())
        ]
        .into()
    );
    assert_eq!(group.steps[0].working_dir.as_deref(), Some("tdir"));
    assert_eq!(group.steps[1].reference, "1.2");
    assert_eq!(group.steps[1].condition, StepCondition::Always);
}

#[test]
fn execution_tags_and_template_names() {
    let doc = workflow(&wf(r#"  execution:
    tags: {suite: nightly, owner: qa}
  use: [{name: z}, {name: a}]
  setup:
    - steps:
        - use: [{name: nested}]
  steps: [{template: {name: a}}]
"#));
    assert_eq!(
        doc.execution_tags(),
        [
            ("owner".to_string(), "qa".to_string()),
            ("suite".into(), "nightly".into())
        ]
        .into()
    );
    assert_eq!(doc.template_names(), vec!["a", "nested", "z"]);
}

#[test]
fn to_json_is_canonical() {
    let doc = workflow(&wf(r#"  content:
    files: [{path: a.sh, content: x, mode: 0755}]
  steps:
    - run: echo hi
      env: {A: "1"}
"#));
    let json = doc.to_json();
    assert_eq!(
        json,
        json!({
            "apiVersion": "testworkflows.testkube.io/v1",
            "kind": "TestWorkflow",
            "metadata": {"name": "t"},
            "spec": {
                "content": {"files": [{"path": "a.sh", "content": "x", "mode": "0755"}]},
                "steps": [{"run": {"shell": "echo hi"}, "env": [{"name": "A", "value": "1"}]}]
            }
        })
    );
}

/// Runs the example plans with the real `/bin/sh` (a minimal stand-in for the executor:
/// leaf steps in order, stop at the first failure) to prove the examples do what they say.
#[test]
fn examples_do_what_they_say_with_a_real_shell() {
    use std::os::unix::fs::PermissionsExt;

    fn leaves(steps: &[crate::execution::PlannedStep]) -> Vec<&crate::execution::PlannedStep> {
        let mut out = Vec::new();
        for s in steps {
            if s.command.is_some() {
                out.push(s);
            }
            out.extend(leaves(&s.steps));
        }
        out
    }

    /// (reference, exit code, stdout) of each step run.
    fn run(plan: &ExecutionPlan, workspace: &std::path::Path) -> Vec<(String, i32, String)> {
        for f in &plan.files {
            let path = workspace.join(&f.path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &f.content).unwrap();
            if let Some(mode) = f.mode {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            }
        }
        let mut results = Vec::new();
        let mut failed = false;
        for step in leaves(&plan.setup).into_iter().chain(leaves(&plan.steps)) {
            if failed {
                break;
            }
            let Some(StepCommand::Shell { shell, script }) = &step.command else {
                panic!("examples use shell steps");
            };
            let cwd = match step.working_dir.as_ref().or(plan.working_dir.as_ref()) {
                Some(dir) => workspace.join(dir),
                None => workspace.to_path_buf(),
            };
            let out = std::process::Command::new(&shell[0])
                .args(&shell[1..])
                .arg("-c")
                .arg(script)
                .current_dir(cwd)
                .envs(&plan.env)
                .envs(&step.env)
                .output()
                .unwrap();
            let code = out.status.code().unwrap_or(-1);
            failed = code != 0;
            results.push((
                step.reference.clone(),
                code,
                mask_secrets(&String::from_utf8_lossy(&out.stdout), &plan.secrets),
            ));
        }
        results
    }

    let root = std::env::temp_dir().join(format!("assay-examples-{}", std::process::id()));
    let fresh = |name: &str| {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    };

    let smoke = build_plan(&workflow(SMOKE), &no_templates(), &BTreeMap::new()).unwrap();
    let results = run(&smoke.plan, &fresh("smoke"));
    assert_eq!(
        results,
        vec![
            ("1".to_string(), 0, "hello from assay\n".to_string()),
            ("2".to_string(), 0, "2 + 3 = 5\n".to_string()),
        ]
    );

    let junit = build_plan(&workflow(FAILING_JUNIT), &no_templates(), &BTreeMap::new()).unwrap();
    let dir = fresh("junit");
    let results = run(&junit.plan, &dir);
    assert_eq!(
        results,
        vec![("1".to_string(), 1, "3 tests, 1 failure\n".to_string())]
    );
    let report = std::fs::read_to_string(dir.join("reports/junit.xml")).unwrap();
    assert!(report.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"));
    assert_eq!(report.matches("<testcase ").count(), 3);
    assert_eq!(report.matches("<failure ").count(), 1);

    let password = "it's $(touch pwned) `id`";
    let params = build_plan(
        &workflow(PARAMETERISED),
        &no_templates(),
        &config(&[("password", json!(password))]),
    )
    .unwrap();
    let dir = fresh("params");
    let results = run(&params.plan, &dir);
    assert_eq!(
        results,
        vec![
            (
                "1".to_string(),
                0,
                "browser=chrome retries=2 verbose=false\n".to_string()
            ),
            (
                "2".to_string(),
                0,
                "attempt 1: logging in with password ***\nattempt 2: logging in with password \
                 ***\npassword has 24 characters\n"
                    .to_string()
            ),
        ]
    );
    assert!(!dir.join("pwned").exists());

    let templates: BTreeMap<String, WorkflowDocument> =
        [("greeter".to_string(), template(GREETER))].into();
    let user = build_plan(&workflow(TEMPLATE_USER), &templates, &BTreeMap::new()).unwrap();
    let dir = fresh("template-user");
    let results = run(&user.plan, &dir);
    let codes: Vec<(&str, i32)> = results.iter().map(|(r, c, _)| (r.as_str(), *c)).collect();
    assert_eq!(
        codes,
        vec![("setup.1", 0), ("1", 0), ("2", 0), ("3.1", 0), ("3.2", 0)]
    );
    assert_eq!(results[1].2, "hello, Assay team\nhello, Assay team\n");
    assert_eq!(
        std::fs::read_to_string(dir.join("out/greeting.txt")).unwrap(),
        "hello, again\n"
    );
    std::fs::remove_dir_all(&root).unwrap();
}
