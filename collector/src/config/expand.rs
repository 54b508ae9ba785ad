//! `${env:VAR}`, `${env:VAR:-default}` and `${VAR}` expansion in config values; `$$` is a
//! literal `$`. Keys are not expanded. An unset variable without a default is an error (not an
//! empty string), so a missing secret cannot slip through as "".

use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath, ConfigValue, ValueKind};

/// Where variables come from (the process environment, or a map in tests).
pub trait Env {
    /// The value of `name`, if set.
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

/// Expands every scalar in `value`, collecting every error.
pub fn expand(value: &mut ConfigValue, env: &dyn Env, errors: &mut ConfigErrors) {
    walk(value, &ConfigPath::root(), env, errors);
}

fn walk(value: &mut ConfigValue, path: &ConfigPath, env: &dyn Env, errors: &mut ConfigErrors) {
    let location = value.location.clone();
    match &mut value.kind {
        ValueKind::Scalar(s) if s.text.contains('$') => match expand_str(&s.text, env) {
            Ok(t) => s.text = t,
            Err(msg) => errors.push(
                ConfigError::new(path.clone(), msg.0)
                    .at_opt(location)
                    .with_hint(msg.1),
            ),
        },
        ValueKind::Sequence(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                walk(v, &path.index(i), env, errors);
            }
        }
        ValueKind::Mapping(entries) => {
            for e in entries.iter_mut() {
                walk(&mut e.value, &path.key(e.key.clone()), env, errors);
            }
        }
        _ => {}
    }
}

/// Expands one string. On error returns (message, hint).
pub fn expand_str(s: &str, env: &dyn Env) -> Result<String, (String, String)> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(body_start) = after.strip_prefix('{') {
            let Some(end) = body_start.find('}') else {
                return Err((
                    format!("unclosed `${{` in `{s}`"),
                    "close it with `}`, or write `$$` for a literal `$`".into(),
                ));
            };
            out.push_str(&resolve(&body_start[..end], env)?);
            rest = &body_start[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn resolve(body: &str, env: &dyn Env) -> Result<String, (String, String)> {
    let (provider, spec) = match body.split_once(':') {
        Some((p, s)) if p.chars().all(|c| c.is_ascii_alphanumeric()) && !p.is_empty() => (p, s),
        _ => ("env", body),
    };
    if provider != "env" {
        return Err((
            format!("unsupported config provider `{provider}` in `${{{body}}}`"),
            "only `${env:VAR}` is supported".into(),
        ));
    }
    let (name, default) = match spec.split_once(":-") {
        Some((n, d)) => (n, Some(d)),
        None => (spec, None),
    };
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err((
            format!("invalid environment variable name `{name}`"),
            "names hold letters, digits and `_`".into(),
        ));
    }
    match (env.get(name), default) {
        (Some(v), _) => Ok(v),
        (None, Some(d)) => Ok(d.to_owned()),
        (None, None) => Err((
            format!("environment variable `{name}` is not set"),
            format!("set it, or give a default with `${{env:{name}:-default}}`"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: [(&str, &str); 2] = [("PORT", "4317"), ("KEY", "s3cret")];

    #[test]
    fn expands_every_form() {
        assert_eq!(
            expand_str("127.0.0.1:${env:PORT}", &ENV).unwrap(),
            "127.0.0.1:4317"
        );
        assert_eq!(expand_str("${PORT}", &ENV).unwrap(), "4317");
        assert_eq!(
            expand_str("${env:MISSING:-fallback}", &ENV).unwrap(),
            "fallback"
        );
        assert_eq!(expand_str("${env:MISSING:-}", &ENV).unwrap(), "");
        assert_eq!(
            expand_str("cost: $$5 and $x", &ENV).unwrap(),
            "cost: $5 and $x"
        );
        assert_eq!(expand_str("$${env:PORT}", &ENV).unwrap(), "${env:PORT}");
    }

    #[test]
    fn explains_what_is_wrong() {
        assert!(
            expand_str("${env:NOPE}", &ENV)
                .unwrap_err()
                .0
                .contains("`NOPE` is not set")
        );
        assert!(
            expand_str("${file:/x}", &ENV)
                .unwrap_err()
                .0
                .contains("unsupported config provider `file`")
        );
        assert!(
            expand_str("${env:PORT", &ENV)
                .unwrap_err()
                .0
                .contains("unclosed")
        );
        assert!(
            expand_str("${env:9x}", &ENV)
                .unwrap_err()
                .0
                .contains("invalid environment variable name")
        );
    }

    #[test]
    fn reports_each_bad_value_at_its_line_and_keeps_types() {
        let mut v = lumina_sdk::config::parse_yaml(
            "a: ${env:PORT}\nb: ${env:X}\nc:\n  - ${env:Y}\n",
            "e.yaml",
        )
        .unwrap();
        let mut errors = ConfigErrors::new();
        expand(&mut v, &ENV, &mut errors);
        let text = errors.to_string();
        assert_eq!(errors.len(), 2, "{text}");
        assert!(
            text.contains("e.yaml:2:4: b: environment variable `X` is not set"),
            "{text}"
        );
        assert!(text.contains("e.yaml:4:5: c[0]:"), "{text}");
        assert_eq!(
            v.to_json()["a"],
            serde_json::json!(4317),
            "a plain scalar stays typed after expansion"
        );
    }
}
