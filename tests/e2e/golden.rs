//! Golden tests of `lumina validate`'s output. Each `tests/golden/NAME.yaml` has its expected
//! exit code, stdout and stderr in `NAME.out`; `LUMINA_BLESS=1` rewrites them.

use std::process::Command;

use crate::harness::{lumina_bin, workspace};

fn check(name: &str) {
    check_with(name, &[]);
}

/// [`check`] with more arguments to `validate`.
fn check_with(name: &str, args: &[&str]) {
    let dir = workspace().join("tests");
    let out = Command::new(lumina_bin())
        .args(["validate", "--config", &format!("golden/{name}.yaml")])
        .args(args)
        .current_dir(&dir)
        .env_remove("LUMINA_GOLDEN_UNSET")
        // Where the example plugins were built, for configs that load one.
        .env(
            "LUMINA_GOLDEN_PLUGINS",
            crate::harness::plugin("redact_numbers.wasm")
                .parent()
                .unwrap(),
        )
        .envs(crate::harness::services::AWS_ENV)
        .output()
        .unwrap();
    let actual = format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let golden = dir.join(format!("golden/{name}.out"));
    if std::env::var_os("LUMINA_BLESS").is_some() {
        std::fs::write(&golden, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_else(|_| {
        panic!(
            "{} is missing; run with LUMINA_BLESS=1 to create it",
            golden.display()
        )
    });
    assert_eq!(
        actual, expected,
        "`lumina validate` output for {name} changed; if that is intended, run with LUMINA_BLESS=1"
    );
}

#[test]
fn several_mistakes_are_all_reported_with_lines_and_hints() {
    check("several_mistakes");
}

#[test]
fn connector_loops_are_reported() {
    check("connector_loop");
}

#[test]
fn unset_environment_variables_are_reported() {
    check("unset_env");
}

#[test]
fn a_valid_config_passes_and_mentions_unused_components() {
    check("valid");
}

#[test]
fn yaml_syntax_errors_point_at_the_line() {
    check("syntax_error");
}

#[test]
fn two_listeners_on_one_address_defaults_included_are_reported() {
    check("listen_twice");
}

#[test]
fn a_tenant_whose_home_region_has_no_route_is_reported() {
    check("unrouted_tenant");
}

#[test]
fn an_unreachable_destination_is_one_readable_sentence() {
    check_with("unreachable_stream", &["--check-destinations"]);
}

#[test]
fn validate_without_a_config_says_it_checked_the_built_in_one() {
    let out = Command::new(lumina_bin())
        .arg("validate")
        .current_dir(workspace())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.starts_with(
            "No --config given: checked the built-in configuration (configs/local.yaml).\n"
        ),
        "{stdout}"
    );
}

#[test]
fn vrl_programs_that_do_not_compile_are_reported_at_their_lines() {
    check("vrl_programs");
}

#[test]
fn a_wrong_host_key_and_a_wrong_plugin_value_of_one_plugin_are_both_reported() {
    check("plugin_mistakes");
}
