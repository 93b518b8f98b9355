//! Runtime values, and facts read from JSON against the schema.

use std::fmt;
use std::sync::Arc;

use crate::types::Type;

/// A value. Records hold their fields in the order of their type (a field's index is its slot).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Str(Arc<str>),
    Semver(Arc<semver::Version>),
    List(Arc<[Value]>),
    Record(Arc<[Value]>),
    /// An optional field that is not there.
    Absent,
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(Arc::from(s))
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// Renders for people: strings quoted, versions bare, lists and records in brackets.
    pub fn render(&self, ty: Option<&Type>) -> String {
        let mut out = String::new();
        self.render_into(ty, &mut out, 0);
        out
    }

    fn render_into(&self, ty: Option<&Type>, out: &mut String, depth: usize) {
        use std::fmt::Write;
        if depth > 8 || out.len() > 400 {
            out.push('…');
            return;
        }
        match self {
            Value::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Str(s) => {
                let _ = write!(out, "{}", serde_json::Value::String(s.to_string()));
            }
            Value::Semver(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Absent => out.push_str("absent"),
            Value::List(items) => {
                let elem = ty.and_then(Type::element);
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    if out.len() > 400 {
                        out.push('…');
                        break;
                    }
                    v.render_into(elem, out, depth + 1);
                }
                out.push(']');
            }
            Value::Record(fields) => {
                let rt = match ty {
                    Some(Type::Record(r)) => Some(r),
                    _ => None,
                };
                out.push('{');
                for (i, v) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    match rt.and_then(|r| r.fields.get(i)) {
                        Some(f) => {
                            out.push_str(&f.name);
                            out.push_str(": ");
                            v.render_into(Some(&f.ty), out, depth + 1);
                        }
                        None => v.render_into(None, out, depth + 1),
                    }
                }
                out.push('}');
            }
        }
    }

    /// Converts a value back to JSON (records need their type for field names).
    pub fn to_json(&self, ty: &Type) -> serde_json::Value {
        use serde_json::Value as J;
        match (self, ty) {
            (Value::Bool(b), _) => J::Bool(*b),
            (Value::Int(i), _) => J::from(*i),
            (Value::Str(s), _) => J::String(s.to_string()),
            (Value::Semver(v), _) => J::String(v.to_string()),
            (Value::Absent, _) => J::Null,
            (Value::List(items), t) => {
                let elem = t.element().cloned().unwrap_or(Type::Error);
                J::Array(items.iter().map(|v| v.to_json(&elem)).collect())
            }
            (Value::Record(fields), Type::Record(r)) => J::Object(
                r.fields
                    .iter()
                    .zip(fields.iter())
                    .filter(|(_, v)| **v != Value::Absent)
                    .map(|(f, v)| (f.name.clone(), v.to_json(&f.ty)))
                    .collect(),
            ),
            (Value::Record(fields), _) => {
                J::Array(fields.iter().map(|v| v.to_json(&Type::Error)).collect())
            }
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(None))
    }
}

/// Facts that do not match the schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("the input is not valid JSON: {0}")]
    Json(String),
    #[error("`{path}` is missing: the schema requires it")]
    Missing { path: String },
    #[error("`{path}` should be {expected}, found {found}")]
    WrongType {
        path: String,
        expected: String,
        found: String,
    },
    #[error("`{path}` is not a valid semver version: {reason}")]
    BadSemver { path: String, reason: String },
    #[error("the input is larger than {limit} bytes")]
    TooLarge { limit: usize },
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(n) if n.is_i64() => "an integer",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn expected_name(t: &Type) -> String {
    match t {
        Type::Bool => "a boolean".into(),
        Type::Int => "an integer".into(),
        Type::Str => "a string".into(),
        Type::Semver => "a semver version string".into(),
        Type::List(_) | Type::Set(_) => "an array".into(),
        Type::Record(_) => "an object".into(),
        Type::Optional(t) => expected_name(t),
        Type::Error => "a value".into(),
    }
}

/// Reads facts from JSON text against a type (the schema's root).
///
/// The text is read straight into values, guided by the type. Only when that fails is it read
/// again through a JSON tree, to name the path at fault precisely.
pub fn from_json_text(text: &str, ty: &Type, limit: usize) -> Result<Value, InputError> {
    if text.len() > limit {
        return Err(InputError::TooLarge { limit });
    }
    let mut de = serde_json::Deserializer::from_str(text);
    if let Ok(v) = serde::de::DeserializeSeed::deserialize(Seed(ty), &mut de)
        && de.end().is_ok()
    {
        return Ok(v);
    }
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| InputError::Json(e.to_string()))?;
    from_json(&json, ty, "input")
}

/// Deserializes a value of a known type directly (no intermediate JSON tree).
struct Seed<'t>(&'t Type);

impl<'de> serde::de::DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        match self.inner() {
            Type::Bool => Ok(Value::Bool(v)),
            _ => Err(E::custom("type")),
        }
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        match self.inner() {
            Type::Int => Ok(Value::Int(v)),
            _ => Err(E::custom("type")),
        }
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        match self.inner() {
            Type::Int => i64::try_from(v)
                .map(Value::Int)
                .map_err(|_| E::custom("range")),
            _ => Err(E::custom("type")),
        }
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        match self.inner() {
            Type::Str => Ok(Value::Str(Arc::from(v))),
            Type::Semver => semver::Version::parse(v)
                .map(|s| Value::Semver(Arc::new(s)))
                .map_err(|_| E::custom("semver")),
            _ => Err(E::custom("type")),
        }
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        match self.0 {
            Type::Optional(_) => Ok(Value::Absent),
            _ => Err(E::custom("type")),
        }
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let (Type::List(elem) | Type::Set(elem)) = self.inner() else {
            return Err(serde::de::Error::custom("type"));
        };
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(v) = seq.next_element_seed(Seed(elem))? {
            out.push(v);
        }
        Ok(Value::List(Arc::from(out)))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Type::Record(r) = self.inner() else {
            return Err(serde::de::Error::custom("type"));
        };
        let mut fields: Vec<Option<Value>> = vec![None; r.fields.len()];
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match r.fields.iter().position(|f| f.name == key) {
                Some(i) => fields[i] = Some(map.next_value_seed(Seed(&r.fields[i].ty))?),
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        let mut out = Vec::with_capacity(fields.len());
        for (f, v) in r.fields.iter().zip(fields) {
            match v {
                Some(v) => out.push(v),
                None if matches!(f.ty, Type::Optional(_)) => out.push(Value::Absent),
                None => return Err(serde::de::Error::custom("missing")),
            }
        }
        Ok(Value::Record(Arc::from(out)))
    }
}

impl Seed<'_> {
    /// The type without its optionality.
    fn inner(&self) -> &Type {
        match self.0 {
            Type::Optional(t) => t,
            t => t,
        }
    }
}

/// One step of the path to a value, kept as a reference until an error needs the text.
enum Seg<'j> {
    Field(&'j str),
    Index(usize),
}

fn path_text(root: &str, segs: &[Seg<'_>]) -> String {
    let mut out = root.to_owned();
    for s in segs {
        match s {
            Seg::Field(f) => {
                out.push('.');
                out.push_str(f);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Reads a JSON tree against a type: straight into values, and only when that fails a second
/// time through [`from_json`], to name the path at fault.
pub fn from_json_tree(json: &serde_json::Value, ty: &Type) -> Result<Value, InputError> {
    if let Ok(v) = serde::de::DeserializeSeed::deserialize(Seed(ty), json) {
        return Ok(v);
    }
    from_json(json, ty, "input")
}

/// Reads a JSON value against a type; `path` names it in errors.
pub fn from_json(json: &serde_json::Value, ty: &Type, path: &str) -> Result<Value, InputError> {
    let mut segs = Vec::new();
    read(json, ty, path, &mut segs)
}

fn read<'j>(
    json: &'j serde_json::Value,
    ty: &'j Type,
    root: &str,
    segs: &mut Vec<Seg<'j>>,
) -> Result<Value, InputError> {
    use serde_json::Value as J;
    let wrong = |segs: &[Seg<'_>]| InputError::WrongType {
        path: path_text(root, segs),
        expected: expected_name(ty),
        found: json_kind(json).to_owned(),
    };
    Ok(match (ty, json) {
        (Type::Optional(_), J::Null) => Value::Absent,
        (Type::Optional(t), _) => read(json, t, root, segs)?,
        (Type::Bool, J::Bool(b)) => Value::Bool(*b),
        (Type::Int, J::Number(n)) => Value::Int(n.as_i64().ok_or_else(|| wrong(segs))?),
        (Type::Str, J::String(s)) => Value::Str(Arc::from(s.as_str())),
        (Type::Semver, J::String(s)) => {
            Value::Semver(Arc::new(semver::Version::parse(s).map_err(|e| {
                InputError::BadSemver {
                    path: path_text(root, segs),
                    reason: e.to_string(),
                }
            })?))
        }
        (Type::List(t) | Type::Set(t), J::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                segs.push(Seg::Index(i));
                out.push(read(item, t, root, segs)?);
                segs.pop();
            }
            Value::List(Arc::from(out))
        }
        (Type::Record(r), J::Object(map)) => {
            let mut out = Vec::with_capacity(r.fields.len());
            for f in &r.fields {
                match map.get(&f.name) {
                    Some(v) => {
                        segs.push(Seg::Field(&f.name));
                        out.push(read(v, &f.ty, root, segs)?);
                        segs.pop();
                    }
                    None if matches!(f.ty, Type::Optional(_)) => out.push(Value::Absent),
                    None => {
                        segs.push(Seg::Field(&f.name));
                        return Err(InputError::Missing {
                            path: path_text(root, segs),
                        });
                    }
                }
            }
            Value::Record(Arc::from(out))
        }
        (Type::Error, _) => Value::Absent,
        _ => return Err(wrong(segs)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Schema;

    #[test]
    fn facts_are_read_against_the_schema() {
        let schema = Schema::submission();
        let text = r#"{"name":"acme-logger","version":"1.4.2",
            "publisher":{"id":"acme","verified":true,"tier":"partner"},
            "permissions":["net:api.example.com","fs:read"],
            "resources":{"memory_mb":256,"cpu_millis":500,"wasm_size_kb":2048},
            "compat":{"min_host":"2.3.0","max_host":"3.0.0"},
            "sbom":{"licenses":["MIT","Apache-2.0"]},"signatures":2}"#;
        let v = from_json_text(text, &schema.root, 1 << 20);
        assert!(matches!(v, Ok(Value::Record(_))), "{v:?}");
    }

    #[test]
    fn wrong_types_and_missing_fields_name_the_path() {
        let schema = Schema::submission();
        let err = from_json_text(r#"{"name": 3}"#, &schema.root, 1 << 20);
        assert_eq!(
            err,
            Err(InputError::WrongType {
                path: "input.name".into(),
                expected: "a string".into(),
                found: "an integer".into()
            })
        );
        let err = from_json_text(r#"{"name": "x"}"#, &schema.root, 1 << 20);
        assert_eq!(
            err,
            Err(InputError::Missing {
                path: "input.version".into()
            })
        );
    }
}
