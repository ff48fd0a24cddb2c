//! Reads sections from the flat key/value table, gathering every problem.
//!
//! serde stops at the first missing field or bad value. To name them all at once a
//! section is read again after each problem: a bad value is dropped (the field
//! takes its default, or is missing), a missing field gets a neutral placeholder
//! (an empty string, zero). The section built that way is never used unless no
//! problem was found: [`Reader::finish`] turns any problem into the error.

use std::collections::{HashMap, HashSet};

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};

use crate::{Checks, Problem, SettingsError};

/// Reads the sections of one service; see the module docs.
pub struct Reader<'a> {
    table: &'a HashMap<String, config::Value>,
    problems: Vec<Problem>,
}

impl<'a> Reader<'a> {
    pub(crate) const fn new(table: &'a HashMap<String, config::Value>) -> Self {
        Self {
            table,
            problems: Vec::new(),
        }
    }

    /// Reads a section (a struct of settings). Its problems are kept for
    /// [`Reader::finish`]; the value returned is only meaningful if there were
    /// none. An error here means the section could not be built at all.
    pub fn section<T: DeserializeOwned>(&mut self) -> Result<T, SettingsError> {
        let mut dropped: HashSet<&'static str> = HashSet::new();
        let mut placeholders: HashSet<&'static str> = HashSet::new();
        // Each round settles one field (a bad required value takes two: dropped,
        // then missing), so a section of n fields needs at most 2n + 1.
        for _ in 0..=2 * MAX_FIELDS {
            let section = SectionDeserializer {
                table: self.table,
                dropped: &dropped,
                placeholders: &placeholders,
            };
            match T::deserialize(section) {
                Ok(value) => return Ok(value),
                Err(ReadError::Missing(field)) => {
                    // A bad value dropped above is named already: "not valid".
                    if !dropped.contains(field) {
                        self.problems.push(Problem::new(field, "is missing"));
                    }
                    placeholders.insert(field);
                }
                Err(ReadError::Value { field, message }) => {
                    self.problems
                        .push(Problem::new(field, format!("is not valid: {message}")));
                    dropped.insert(field);
                }
                Err(e @ (ReadError::Other(_) | ReadError::Fields(_))) => {
                    self.problems.push(Problem::new("settings", e.to_string()));
                    break;
                }
            }
        }
        Err(SettingsError::Invalid(std::mem::take(&mut self.problems)))
    }

    /// Adds the problems of a start-up check, leaving out keys already named (a
    /// missing key also fails the checks that read its placeholder).
    pub fn check(&mut self, result: Result<(), SettingsError>) {
        let mut checks = Checks::default();
        checks.add(result);
        for problem in checks.0 {
            if !self.problems.iter().any(|p| p.key == problem.key) {
                self.problems.push(problem);
            }
        }
    }

    /// Every problem found, as one error; `Ok` when there were none.
    pub fn finish(self) -> Result<(), SettingsError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(SettingsError::Invalid(self.problems))
        }
    }
}

/// Far more fields than any section has: bounds the rounds of [`Reader::section`].
const MAX_FIELDS: usize = 64;

#[derive(Debug)]
enum ReadError {
    Missing(&'static str),
    Value {
        field: &'static str,
        message: String,
    },
    Other(String),
    /// Only from [`KeysProbe`].
    Fields(&'static [&'static str]),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing(field) => write!(f, "{field} is missing"),
            Self::Value { field, message } => write!(f, "{field}: {message}"),
            Self::Other(message) => f.write_str(message),
            Self::Fields(fields) => write!(f, "fields {fields:?}"),
        }
    }
}

impl std::error::Error for ReadError {}

impl de::Error for ReadError {
    fn custom<M: std::fmt::Display>(msg: M) -> Self {
        Self::Other(msg.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        Self::Missing(field)
    }
}

/// Serves a struct's fields from the table, minus the dropped ones, plus placeholders.
struct SectionDeserializer<'a> {
    table: &'a HashMap<String, config::Value>,
    dropped: &'a HashSet<&'static str>,
    placeholders: &'a HashSet<&'static str>,
}

impl<'de> de::Deserializer<'de> for SectionDeserializer<'_> {
    type Error = ReadError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ReadError> {
        Err(ReadError::Other(
            "a settings section must be a struct".to_owned(),
        ))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ReadError> {
        visitor.visit_map(Fields {
            section: self,
            fields: fields.iter(),
            current: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

struct Fields<'a> {
    section: SectionDeserializer<'a>,
    fields: std::slice::Iter<'static, &'static str>,
    current: Option<(&'static str, Option<&'a config::Value>)>,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = ReadError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ReadError> {
        for field in self.fields.by_ref() {
            let field: &'static str = field;
            let value = self
                .section
                .table
                .get(field)
                .filter(|_| !self.section.dropped.contains(field));
            if value.is_none() && !self.section.placeholders.contains(field) {
                continue;
            }
            self.current = Some((field, value));
            return seed.deserialize(field.into_deserializer()).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ReadError> {
        match self.current.take() {
            Some((field, Some(value))) => {
                seed.deserialize(value.clone())
                    .map_err(|e: config::ConfigError| ReadError::Value {
                        field,
                        message: e.to_string(),
                    })
            }
            Some((_, None)) => seed.deserialize(Placeholder),
            None => Err(ReadError::Other("a value without a key".to_owned())),
        }
    }
}

/// The neutral value of whatever type asks: "", 0, false, none, empty.
struct Placeholder;

impl<'de> de::Deserializer<'de> for Placeholder {
    type Error = ReadError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        visitor.visit_unit()
    }
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        visitor.visit_bool(false)
    }
    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        visitor.visit_i64(0)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        visitor.visit_i64(0)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        visitor.visit_i64(0)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        visitor.visit_i64(0)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        visitor.visit_u64(0)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        visitor.visit_u64(0)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        visitor.visit_u64(0)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        visitor.visit_u64(0)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        visitor.visit_f64(0.0)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        visitor.visit_f64(0.0)
    }
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        visitor.visit_char(' ')
    }
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        visitor.visit_str("")
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        visitor.visit_str("")
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        visitor.visit_none()
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ReadError> {
        visitor.visit_newtype_struct(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        visitor.visit_seq(de::value::SeqDeserializer::new(std::iter::empty::<u8>()))
    }
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        visitor.visit_map(de::value::MapDeserializer::new(
            std::iter::empty::<(u8, u8)>(),
        ))
    }

    serde::forward_to_deserialize_any! {
        i128 u128 bytes byte_buf unit unit_struct tuple tuple_struct struct enum
        identifier ignored_any
    }
}

/// The keys (environment variable names, upper case) a section reads: for `--help`
/// and the docs check, so the list cannot drift from the code.
pub fn keys_of<T: DeserializeOwned>() -> Vec<String> {
    match T::deserialize(KeysProbe) {
        Err(ReadError::Fields(fields)) => fields.iter().map(|f| f.to_ascii_uppercase()).collect(),
        _ => Vec::new(),
    }
}

/// Asks a struct for its field names and stops there.
struct KeysProbe;

impl<'de> de::Deserializer<'de> for KeysProbe {
    type Error = ReadError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ReadError> {
        Err(ReadError::Other("not a struct".to_owned()))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, ReadError> {
        Err(ReadError::Fields(fields))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}
