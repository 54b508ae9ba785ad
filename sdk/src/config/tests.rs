// These tests read YAML, which only the host side can.
#![cfg(feature = "host")]

use std::collections::BTreeMap;

use serde::Deserialize;

use super::*;

#[derive(Debug, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
struct Grpc {
    endpoint: String,
    max_recv_msg_size_mib: u32,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Verbosity {
    Basic,
    Normal,
    Detailed,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Top {
    name: String,
    #[serde(default)]
    grpc: Grpc,
    #[serde(default)]
    timeout: Option<Duration>,
    #[serde(default)]
    size: Option<ByteSize>,
    #[serde(default, alias = "format")]
    encoding: Option<String>,
    #[serde(default)]
    verbosity: Option<Verbosity>,
    #[serde(default)]
    list: Vec<u16>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    enabled: bool,
}

fn yaml(s: &str) -> ConfigValue {
    parse_yaml(s, "t.yaml").unwrap()
}

fn errors(s: &str) -> Vec<String> {
    from_value::<Top>(&yaml(s))
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn reads_plain_scalars_as_whatever_the_field_needs() {
    let t: Top = from_value(&yaml(
        "name: 1234\ngrpc: {endpoint: 127.0.0.1:4317, max_recv_msg_size_mib: '16'}\ntimeout: 200ms\n\
         size: 64MiB\nverbosity: detailed\nlist: [1, 2]\nheaders: {a: b}\nenabled: true\nformat: json\n",
    ))
    .unwrap();
    assert_eq!(t.name, "1234");
    assert_eq!(t.grpc.endpoint, "127.0.0.1:4317");
    assert_eq!(t.grpc.max_recv_msg_size_mib, 16);
    assert_eq!(t.timeout, Some(Duration::from_millis(200)));
    assert_eq!(t.size, Some(ByteSize::mib(64)));
    assert_eq!(t.verbosity, Some(Verbosity::Detailed));
    assert_eq!(t.list, vec![1, 2]);
    assert_eq!(t.headers.get("a").map(String::as_str), Some("b"));
    assert!(t.enabled);
    assert_eq!(
        t.encoding.as_deref(),
        Some("json"),
        "aliases are known keys"
    );
}

#[test]
fn every_unknown_key_is_reported_with_a_hint_and_its_own_line() {
    let e = errors("name: x\ngrpc:\n  endpont: a\n  max_recv_msg_size: 4\ntimout: 1s\n");
    assert_eq!(
        e,
        vec![
            "t.yaml:3:3: grpc.endpont: unknown key `endpont` (did you mean `endpoint`?)",
            "t.yaml:4:3: grpc.max_recv_msg_size: unknown key `max_recv_msg_size` (did you mean `max_recv_msg_size_mib`?)",
            "t.yaml:5:1: timout: unknown key `timout` (did you mean `timeout`?)",
        ]
    );
}

#[test]
fn every_bad_value_is_reported_not_only_the_first() {
    let e = errors(
        "name: x\ntimeout: 5 parsecs\nsize: lots\nlist: [1, 70000, x]\nverbosity: detialed\n",
    );
    assert_eq!(e.len(), 5, "{e:#?}");
    assert!(
        e[0].starts_with("t.yaml:2:10: timeout: invalid duration `5 parsecs`"),
        "{}",
        e[0]
    );
    assert!(
        e[1].starts_with("t.yaml:3:7: size: invalid size `lots`"),
        "{}",
        e[1]
    );
    assert!(
        e[2].starts_with("t.yaml:4:11: list[1]: invalid value integer `70000`"),
        "{}",
        e[2]
    );
    assert!(
        e[3].starts_with("t.yaml:4:18: list[2]: expected a whole number, found `x`"),
        "{}",
        e[3]
    );
    assert_eq!(
        e[4],
        "t.yaml:5:12: verbosity: unknown value `detialed`; expected one of `basic`, `normal`, `detailed` (did you mean `detailed`?)"
    );
}

#[test]
fn unknown_keys_and_bad_values_come_together() {
    let e = errors("name: x\ngrpc: {max_recv_msg_size_mib: big, extra: 1}\n");
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(e.iter().any(|m| m.contains("grpc.extra: unknown key")));
    assert!(
        e.iter()
            .any(|m| m.contains("grpc.max_recv_msg_size_mib: expected a whole number"))
    );
}

#[test]
fn missing_required_keys_point_at_the_enclosing_mapping() {
    let e = errors("grpc: {}\n");
    assert_eq!(e, vec!["t.yaml:1:1: name: missing required key `name`"]);
}

#[test]
fn a_bad_required_value_is_reported_once() {
    let e = errors("name: [1]\n");
    assert_eq!(e, vec!["t.yaml:1:7: name: expected text, found a sequence"]);
}

#[test]
fn wrong_shapes_say_what_was_expected() {
    let e = errors("name: x\ngrpc: 5\nheaders: [a]\n");
    assert_eq!(
        e,
        vec![
            "t.yaml:2:7: grpc: expected a mapping of settings, found `5`",
            "t.yaml:3:10: headers: expected a mapping, found a sequence",
        ]
    );
}

#[test]
fn null_sections_take_defaults() {
    let t: Top = from_value(&yaml("name: x\ngrpc:\nlist:\n")).unwrap();
    assert_eq!(t.grpc, Grpc::default());
    assert!(t.list.is_empty());
}

#[test]
fn validate_errors_get_locations() {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Limits {
        min: u32,
        max: u32,
    }
    impl Validate for Limits {
        fn validate(&self) -> Result<(), ConfigErrors> {
            if self.max < self.min {
                return Err(
                    ConfigError::new(ConfigPath::parse("max"), "must not be below `min`").into(),
                );
            }
            Ok(())
        }
    }
    let e = parse::<Limits>(&yaml("min: 5\nmax: 1\n")).unwrap_err();
    assert_eq!(e.to_string(), "t.yaml:2:6: max: must not be below `min`");
}

#[test]
fn validate_still_runs_when_there_are_unknown_keys_but_not_after_bad_values() {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Range {
        min: u32,
        max: u32,
    }
    impl Validate for Range {
        fn validate(&self) -> Result<(), ConfigErrors> {
            if self.max < self.min {
                return Err(
                    ConfigError::new(ConfigPath::parse("max"), "must not be below `min`").into(),
                );
            }
            Ok(())
        }
    }
    let e = parse::<Range>(&yaml("min: 5\nmax: 1\nextra: 0\n"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "t.yaml:2:6: max: must not be below `min`\nt.yaml:3:1: extra: unknown key `extra` (valid keys: `min`, `max`)"
    );
    let e = parse::<Range>(&yaml("min: x\nmax: 1\n")).unwrap_err();
    assert_eq!(e.len(), 1, "{e}");
}

#[test]
fn an_error_on_a_line_of_a_literal_block_is_located_on_that_line_of_the_file() {
    let root = yaml("a:\n  program: |\n    first\n    second\n  inline: 'one line'\n");
    let at = |key: &str, line: usize| {
        ConfigError::new(ConfigPath::parse(key), "bad")
            .on_line(line)
            .rebase(&ConfigPath::parse("a"), &root)
            .location
            .map(|l| (l.line, l.column))
    };
    assert_eq!(at("program", 1), Some((4, 5)));
    assert_eq!(at("program", 0), Some((3, 5)));
    // Other scalars' lines are not the file's: the value's own location.
    assert_eq!(at("inline", 0), Some((5, 11)));
}
