//! Loads YAML text into a [`ConfigValue`] tree that keeps the line and column of every value.
//!
//! Anchors and aliases are resolved, `<<` merge keys are applied, duplicate keys are errors and a
//! file must hold one document.

use std::collections::HashMap;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, StrInput};

use super::error::{ConfigError, ConfigErrors};
use super::value::{ConfigPath, ConfigValue, Entry, Location, Scalar, ValueKind};

/// Parses one YAML document. `source` names it in locations (a file name, `<embedded>`, ...).
/// An empty document is an empty mapping.
pub fn parse_yaml(text: &str, source: &str) -> Result<ConfigValue, ConfigErrors> {
    let mut loader = Loader {
        parser: Parser::new_from_str(text),
        source: Arc::from(source),
        anchors: HashMap::new(),
        errors: Vec::new(),
    };
    match loader.document() {
        Ok(v) if loader.errors.is_empty() => Ok(v),
        Ok(_) => Err(ConfigErrors::from(loader.errors)),
        Err(e) => {
            loader.errors.push(e);
            Err(ConfigErrors::from(loader.errors))
        }
    }
}

struct Loader<'a> {
    parser: Parser<'a, StrInput<'a>>,
    source: Arc<str>,
    anchors: HashMap<usize, ConfigValue>,
    errors: Vec<ConfigError>,
}

type Fatal = ConfigError;

impl<'a> Loader<'a> {
    fn loc(&self, span: &Span) -> Location {
        Location {
            source: self.source.clone(),
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }

    fn next(&mut self) -> Result<(Event<'a>, Span), Fatal> {
        match self.parser.next_event() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(ConfigError::new(
                ConfigPath::root(),
                format!("invalid YAML: {}", e.info()),
            )
            .at(Location {
                source: self.source.clone(),
                line: e.marker().line(),
                column: e.marker().col() + 1,
            })),
            None => Err(ConfigError::new(
                ConfigPath::root(),
                "invalid YAML: unexpected end of input",
            )),
        }
    }

    fn document(&mut self) -> Result<ConfigValue, Fatal> {
        let mut root = None;
        loop {
            let (ev, span) = self.next()?;
            match ev {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => break,
                Event::DocumentStart(_) => {
                    if root.is_some() {
                        return Err(ConfigError::new(
                            ConfigPath::root(),
                            "a config file holds one YAML document; split the others into \
                             separate files and pass each with --config",
                        )
                        .at(self.loc(&span)));
                    }
                    let (ev, span) = self.next()?;
                    root = Some(self.node(ev, span, &ConfigPath::root())?);
                }
                _ => {
                    return Err(
                        ConfigError::new(ConfigPath::root(), "invalid YAML document")
                            .at(self.loc(&span)),
                    );
                }
            }
        }
        Ok(match root {
            Some(v) if !v.is_null() => v,
            Some(v) => ConfigValue {
                kind: ValueKind::Mapping(Vec::new()),
                location: v.location,
            },
            None => ConfigValue::empty_mapping(),
        })
    }

    fn node(&mut self, ev: Event<'a>, span: Span, path: &ConfigPath) -> Result<ConfigValue, Fatal> {
        let location = Some(self.loc(&span));
        let (value, anchor) = match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let quoted = !matches!(style, ScalarStyle::Plain);
                let forced_str = match tag.as_deref() {
                    None => false,
                    Some(t) if t.handle == "tag:yaml.org,2002:" || t.handle == "!!" => {
                        t.suffix == "str"
                    }
                    Some(t) => {
                        self.errors.push(
                            ConfigError::new(
                                path.clone(),
                                format!("unsupported YAML tag `{}{}`", t.handle, t.suffix),
                            )
                            .at(self.loc(&span)),
                        );
                        false
                    }
                };
                let kind = if !quoted && !forced_str && is_null_text(&text) {
                    ValueKind::Null
                } else {
                    ValueKind::Scalar(Scalar {
                        text: text.into_owned(),
                        quoted: quoted || forced_str,
                        literal: matches!(style, ScalarStyle::Literal),
                    })
                };
                (ConfigValue { kind, location }, anchor)
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (ev, span) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    let child = path.index(items.len());
                    items.push(self.node(ev, span, &child)?);
                }
                (
                    ConfigValue {
                        kind: ValueKind::Sequence(items),
                        location,
                    },
                    anchor,
                )
            }
            Event::MappingStart(anchor, _) => {
                let entries = self.mapping(path)?;
                (
                    ConfigValue {
                        kind: ValueKind::Mapping(entries),
                        location,
                    },
                    anchor,
                )
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(v) => return Ok(v.clone()),
                None => {
                    return Err(ConfigError::new(path.clone(), "alias to an unknown anchor")
                        .at(self.loc(&span)));
                }
            },
            _ => {
                return Err(
                    ConfigError::new(path.clone(), "unexpected YAML structure").at(self.loc(&span))
                );
            }
        };
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
        Ok(value)
    }

    fn mapping(&mut self, path: &ConfigPath) -> Result<Vec<Entry>, Fatal> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut merged: Vec<Entry> = Vec::new();
        loop {
            let (ev, span) = self.next()?;
            let key_loc = self.loc(&span);
            let key = match ev {
                Event::MappingEnd => break,
                Event::Scalar(text, ..) => text.into_owned(),
                other => {
                    // Complex keys: parse and discard the key, then report.
                    self.node(other, span, path)?;
                    self.errors.push(
                        ConfigError::new(path.clone(), "mapping keys must be plain text")
                            .at(key_loc.clone()),
                    );
                    let (ev, span) = self.next()?;
                    self.node(ev, span, path)?;
                    continue;
                }
            };
            let child = path.key(key.clone());
            let (ev, span) = self.next()?;
            let value = self.node(ev, span, &child)?;
            if key == "<<" {
                self.collect_merge(value, &child, &mut merged);
                continue;
            }
            if let Some(first) = entries.iter().find(|e| e.key == key) {
                let first_at = first
                    .key_location
                    .as_ref()
                    .map(|l| format!(" (first written at line {})", l.line))
                    .unwrap_or_default();
                self.errors.push(
                    ConfigError::new(child, format!("duplicate key `{key}`{first_at}")).at(key_loc),
                );
                continue;
            }
            entries.push(Entry {
                key,
                key_location: Some(key_loc),
                value,
            });
        }
        // Keys written in the mapping itself win over merged ones.
        for m in merged {
            if !entries.iter().any(|e| e.key == m.key) {
                entries.push(m);
            }
        }
        Ok(entries)
    }

    fn collect_merge(&mut self, value: ConfigValue, path: &ConfigPath, out: &mut Vec<Entry>) {
        match value.kind {
            ValueKind::Mapping(entries) => {
                for e in entries {
                    if !out.iter().any(|o| o.key == e.key) {
                        out.push(e);
                    }
                }
            }
            ValueKind::Sequence(items) => {
                for item in items {
                    self.collect_merge(item, path, out);
                }
            }
            _ => self.errors.push(
                ConfigError::new(
                    path.clone(),
                    "a `<<` merge key takes a mapping or a list of mappings",
                )
                .at_opt(value.location),
            ),
        }
    }
}

fn is_null_text(t: &str) -> bool {
    matches!(t, "" | "~" | "null" | "Null" | "NULL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_lines_and_columns() {
        let v = parse_yaml(
            "receivers:\n  otlp:\n    protocols: {grpc: {endpoint: x}}\n",
            "a.yaml",
        )
        .unwrap();
        let e = v
            .at(&ConfigPath::parse("receivers.otlp.protocols.grpc.endpoint"))
            .unwrap();
        let loc = e.location.clone().unwrap();
        assert_eq!((loc.line, &*loc.source), (3, "a.yaml"));
        assert_eq!(e.as_str(), Some("x"));
        let key = v.entry("receivers").unwrap().key_location.clone().unwrap();
        assert_eq!((key.line, key.column), (1, 1));
    }

    #[test]
    fn duplicate_keys_are_errors_with_both_lines() {
        let err = parse_yaml("a: 1\nb: 2\na: 3\n", "x.yaml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("duplicate key `a`"), "{msg}");
        assert!(msg.contains("x.yaml:3:1"), "{msg}");
        assert!(msg.contains("line 1"), "{msg}");
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let v = parse_yaml(
            "base: &b {timeout: 5s, size: 1}\nother:\n  <<: *b\n  size: 2\nlist: [*b]\n",
            "m.yaml",
        )
        .unwrap();
        assert_eq!(
            v.to_json(),
            serde_json::json!({
                "base": {"timeout": "5s", "size": 1},
                "other": {"size": 2, "timeout": "5s"},
                "list": [{"timeout": "5s", "size": 1}],
            })
        );
    }

    #[test]
    fn empty_document_is_an_empty_mapping_and_nulls_are_null() {
        assert_eq!(
            parse_yaml("", "e").unwrap().to_json(),
            serde_json::json!({})
        );
        let v = parse_yaml("a:\nb: ~\nc: 'null'\n", "e").unwrap();
        assert_eq!(
            v.to_json(),
            serde_json::json!({"a": null, "b": null, "c": "null"})
        );
    }

    #[test]
    fn syntax_errors_have_a_location() {
        let err = parse_yaml("a: [1, 2\nb: 3\n", "bad.yaml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("bad.yaml:"), "{msg}");
        assert!(msg.contains("invalid YAML"), "{msg}");
    }

    #[test]
    fn several_documents_are_refused() {
        let err = parse_yaml("a: 1\n---\nb: 2\n", "d.yaml").unwrap_err();
        assert!(err.to_string().contains("one YAML document"), "{err}");
    }
}
