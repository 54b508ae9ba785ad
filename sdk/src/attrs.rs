//! Attribute lookups on OTLP records and resources, written once for every component.

use crate::proto::common::v1::{KeyValue, any_value::Value};

/// The value of attribute `key`, if it is set.
pub fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

/// The value of attribute `key` if it is a string.
pub fn get_str<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match get(attrs, key)? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

/// The value of attribute `key` as text, if it is a string or a number or a boolean.
pub fn get_text(attrs: &[KeyValue], key: &str) -> Option<String> {
    match get(attrs, key)? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::BoolValue(b) => Some(b.to_string()),
        Value::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voice::value::{int_kv, string_kv};

    #[test]
    fn finds_values_by_key_and_type() {
        let attrs = vec![string_kv("a", "x"), int_kv("n", 7)];
        assert_eq!(get_str(&attrs, "a"), Some("x"));
        assert_eq!(get_str(&attrs, "n"), None, "an integer is not a string");
        assert_eq!(get_text(&attrs, "n").as_deref(), Some("7"));
        assert_eq!(get_text(&attrs, "missing"), None);
    }
}
