//! The home regions: each tenant's data lives in one of six, named by id, territory or AWS
//! region.

use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::REGIONS;

/// One of the six home regions, by AWS region name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Region(&'static str);

impl Region {
    /// From an id (`1`), a territory code (`UK`) or an AWS region name (`eu-west-1`).
    pub fn parse(s: &str) -> Option<Region> {
        let s = s.trim();
        REGIONS
            .iter()
            .find(|(id, code, name)| {
                s == id.to_string() || s.eq_ignore_ascii_case(code) || s.eq_ignore_ascii_case(name)
            })
            .map(|(_, _, name)| Region(name))
    }

    /// From a region id.
    pub fn from_id(id: i64) -> Option<Region> {
        REGIONS
            .iter()
            .find(|(i, _, _)| i64::from(*i) == id)
            .map(|(_, _, name)| Region(name))
    }

    /// The AWS region name.
    pub fn name(self) -> &'static str {
        self.0
    }
}

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Region;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a region: an id 1-6, a territory (UK, US, AU, SG, CA, DE) or an AWS region name (eu-west-1, ...)")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Region, E> {
                Region::parse(s).ok_or_else(|| {
                    E::custom(format!("unknown region `{s}`; use an id 1-6, a territory (UK, US, AU, SG, CA, DE) or an AWS region name ({})",
                        REGIONS.iter().map(|r| r.2).collect::<Vec<_>>().join(", ")))
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Region, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Region, E> {
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(feature = "host")]
impl schemars::JsonSchema for Region {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Region".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<serde_json::Value> = REGIONS
            .iter()
            .flat_map(|r| [r.1.to_string(), r.2.to_string()])
            .map(serde_json::Value::String)
            .collect();
        schemars::json_schema!({
            "description": "A region: an id 1-6, a territory (UK, US, AU, SG, CA, DE) or an AWS region name (eu-west-1, ...).",
            "anyOf": [
                { "type": "integer", "minimum": 1, "maximum": 6 },
                { "enum": names },
                { "type": "string", "pattern": "^[1-6]$" }
            ]
        })
    }
}
