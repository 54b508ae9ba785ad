//! The serde access types the config deserializer hands out: mappings, sequences, enums and
//! map keys, each remembering the path it stands at.

use serde::de::{self, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};

use super::*;

pub(super) struct Map<'a> {
    pub(super) entries: std::vec::IntoIter<(&'a Entry, ConfigPath)>,
    pub(super) pending: Option<(&'a ConfigValue, ConfigPath)>,
    pub(super) ctx: &'a Ctx,
}

impl<'de> MapAccess<'de> for Map<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((entry, path)) = self.entries.next() else {
            return Ok(None);
        };
        self.pending = Some((&entry.value, path.clone()));
        seed.deserialize(Key { entry, path }).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.pending.take() {
            Some((v, path)) => seed.deserialize(De {
                v,
                path,
                ctx: self.ctx,
            }),
            None => Err(DeError::msg(
                "internal error: value requested before its key",
            )),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

pub(super) struct Seq<'a> {
    pub(super) items: std::vec::IntoIter<(&'a ConfigValue, ConfigPath)>,
    pub(super) ctx: &'a Ctx,
}

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some((v, path)) => seed
                .deserialize(De {
                    v,
                    path,
                    ctx: self.ctx,
                })
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

pub(super) struct Enum<'a> {
    pub(super) entry: &'a Entry,
    pub(super) path: ConfigPath,
    pub(super) ctx: &'a Ctx,
}

impl<'de> EnumAccess<'de> for Enum<'de> {
    type Error = DeError;
    type Variant = De<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, De<'de>), DeError> {
        let d: de::value::StrDeserializer<'_, DeError> =
            self.entry.key.as_str().into_deserializer();
        let v = seed.deserialize(d)?;
        Ok((
            v,
            De {
                v: &self.entry.value,
                path: self.path,
                ctx: self.ctx,
            },
        ))
    }
}

impl<'de> VariantAccess<'de> for De<'de> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        if self.v.is_null() {
            Ok(())
        } else {
            Err(self.wrong("nothing (null)"))
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_struct(self, "", fields, visitor)
    }
}

/// Reads a mapping key; errors point at the key itself.
pub(super) struct Key<'a> {
    pub(super) entry: &'a Entry,
    pub(super) path: ConfigPath,
}

impl<'de> de::Deserializer<'de> for Key<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor
            .visit_borrowed_str(&self.entry.key)
            .map_err(|mut e: DeError| {
                if e.path.is_none() {
                    e.path = Some(self.path);
                    e.location = self.entry.key_location.clone();
                }
                e
            })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}
