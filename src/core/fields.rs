//! Reading caller-supplied JSON objects (options, schemas, queries) field by field.
//!
//! Hand-written instead of `#[derive(Deserialize)]`: derived visitors cost several kilobytes of
//! WebAssembly per struct, while these few accessors over `serde_json::Value` (which documents
//! need anyway) are shared by every shape. Messages name the offending field.

use serde_json::{Map, Value};

use super::document::json_type_name;
use super::json_text::{quoted_list, text};

/// The fields of one JSON object, with the list of names it may have.
#[derive(Debug)]
pub struct Fields<'a> {
    what: String,
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// Checks that `value` is an object whose fields are all in `allowed`.
    pub fn new(value: &'a Value, what: impl Into<String>, allowed: &[&str]) -> Result<Fields<'a>, String> {
        let what = what.into();
        let map =
            value.as_object().ok_or_else(|| format!("{what} must be an object, got {}", json_type_name(value)))?;
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!(
                "{what} has an unknown field \"{unknown}\" (expected one of {})",
                quoted_list(allowed)
            ));
        }
        Ok(Fields { what, map })
    }

    /// The field's value if present, `null` included.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name)
    }

    fn wrong(&self, name: &str, expected: &str, found: &Value) -> String {
        format!("{}.{name} must be {expected}, got {}", self.what, json_type_name(found))
    }

    pub fn string(&self, name: &str) -> Result<&'a str, String> {
        match self.get(name) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(self.wrong(name, "a string", other)),
            None => Err(format!("{} needs a \"{name}\" field", self.what)),
        }
    }

    pub fn array(&self, name: &str) -> Result<&'a [Value], String> {
        match self.get(name) {
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(self.wrong(name, "an array", other)),
            None => Err(format!("{} needs a \"{name}\" field", self.what)),
        }
    }

    pub fn optional_array(&self, name: &str) -> Result<&'a [Value], String> {
        match self.get(name) {
            None => Ok(&[]),
            Some(_) => self.array(name),
        }
    }

    /// An optional boolean, `false` when absent.
    pub fn flag(&self, name: &str) -> Result<bool, String> {
        match self.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.wrong(name, "a boolean", other)),
        }
    }

    /// An optional whole number between 1 and `u32::MAX`.
    pub fn positive_u32(&self, name: &str) -> Result<Option<u32>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(value) => match value.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) if n >= 1 => Ok(Some(n)),
                _ => Err(format!("{}.{name} must be a whole number of at least 1, got {}", self.what, text(value))),
            },
        }
    }

    /// An optional whole number within `[min, max]`.
    pub fn whole_in(&self, name: &str, min: u32, max: u32) -> Result<Option<u32>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(value) => match value.as_u64() {
                Some(n) if (u64::from(min)..=u64::from(max)).contains(&n) => Ok(Some(n as u32)),
                _ => {
                    Err(format!("{}.{name} must be a whole number from {min} to {max}, got {}", self.what, text(value)))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_typed_fields_and_names_problems() {
        let value = json!({"name": "a", "list": [1], "on": true, "n": 3});
        let fields = Fields::new(&value, "thing", &["name", "list", "on", "n", "missing"]).unwrap();
        assert_eq!(fields.string("name"), Ok("a"));
        assert_eq!(fields.array("list").unwrap().len(), 1);
        assert_eq!(fields.optional_array("missing").unwrap().len(), 0);
        assert_eq!((fields.flag("on"), fields.flag("missing")), (Ok(true), Ok(false)));
        assert_eq!(fields.positive_u32("n"), Ok(Some(3)));
        assert!(fields.string("list").unwrap_err().contains("thing.list must be a string"));
        assert!(fields.string("missing").unwrap_err().contains("needs a \"missing\""));
        assert!(fields.flag("name").is_err());
    }

    #[test]
    fn rejects_unknown_fields_non_objects_and_bad_numbers() {
        assert!(Fields::new(&json!({"x": 1}), "opts", &["y"]).unwrap_err().contains("unknown field \"x\""));
        assert!(Fields::new(&json!([1]), "opts", &[]).unwrap_err().contains("must be an object, got an array"));
        for bad in [json!(0), json!(-1), json!(1.5), json!("2"), json!(5_000_000_000u64)] {
            let value = json!({ "n": bad });
            assert!(Fields::new(&value, "q", &["n"]).unwrap().positive_u32("n").is_err(), "{value}");
        }
    }
}
