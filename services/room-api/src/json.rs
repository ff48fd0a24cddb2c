//! Request bodies. Each is a JSON object ([`Json`]; serde would also fill a struct
//! from an array, `[]` being "every field left out"). An optional field may be left
//! out (it then takes its default, or keeps its value on an update), but never sent
//! as `null`, which would read as "left out" and hide a client's mistake.

use std::{fmt, future::Future, marker::PhantomData, pin::Pin};

use actix_web::{FromRequest, HttpRequest, dev::Payload};
use serde::{
    Deserialize, Deserializer,
    de::{DeserializeOwned, Error, MapAccess, Visitor, value::MapAccessDeserializer},
};
use web_common::{ApiError, JsonBody};

/// A JSON request body that must be an object: [`JsonBody`]'s checks (content
/// type, size, 400 for bad JSON, 422 naming the field), and 422 (`body`) for any
/// other JSON value.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = JsonBody::<Object<T>>::from_request(req, payload);
        Box::pin(async move { body.await.map(|JsonBody(Object(value))| Json(value)) })
    }
}

/// `T`, read from a JSON object only.
#[derive(Debug)]
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(Object)
    }
}

/// [`not_null`] for a field that is itself an object.
pub fn not_null_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    not_null::<D, Object<T>>(deserializer).map(|o| o.map(|Object(value)| value))
}

/// For an `Option` field with `#[serde(default, deserialize_with =
/// "crate::json::not_null")]` and `#[schema(nullable = false)]`: absent is `None`,
/// `null` is refused (422 naming the field), anything else is the value.
pub fn not_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    match Option::<T>::deserialize(deserializer)? {
        Some(value) => Ok(Some(value)),
        None => Err(D::Error::custom(
            "must not be null: leave the field out instead",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[serde(default, deserialize_with = "super::not_null")]
        count: Option<u8>,
        #[serde(default, deserialize_with = "super::not_null_object")]
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[serde(default, deserialize_with = "super::not_null")]
        flag: Option<bool>,
    }

    fn parse(json: &str) -> Result<Body, (String, String)> {
        let value: serde_json::Value = serde_json::from_str(json).expect("json");
        serde_path_to_error::deserialize::<_, super::Object<Body>>(value)
            .map(|super::Object(body)| body)
            .map_err(|e| (e.path().to_string(), e.inner().to_string()))
    }

    #[test]
    fn only_objects_make_structs_with_paths_kept() {
        for not_object in ["[]", "[3]", "3", "\"x\""] {
            let (path, message) = parse(not_object).expect_err(not_object);
            assert_eq!(path, ".", "{not_object}");
            assert!(message.contains("a JSON object"), "{message}");
        }
        let (path, _) = parse("{\"inner\":[true]}").expect_err("array inside");
        assert_eq!(path, "inner");
        let (path, _) = parse("{\"inner\":{\"flag\":null}}").expect_err("null inside");
        assert_eq!(path, "inner.flag");
        let (path, _) = parse("{\"inner\":{\"other\":1}}").expect_err("unknown inside");
        assert_eq!(path, "inner.other");
        let body = parse("{\"inner\":{\"flag\":true}}").expect("valid");
        assert_eq!(body.inner.and_then(|i| i.flag), Some(true));
    }

    #[test]
    fn absent_is_none_null_is_refused_with_the_field_named() {
        assert_eq!(parse("{}").expect("absent").count, None);
        assert_eq!(parse("{\"count\":3}").expect("value").count, Some(3));
        let (path, message) = parse("{\"count\":null}").expect_err("null");
        assert_eq!(path, "count");
        assert!(message.contains("must not be null"), "{message}");
    }
}
