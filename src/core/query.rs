//! Index queries: the accepted shapes of `collection.query(...)` and their validation, so a
//! malformed query fails with `INVALID_QUERY` before IndexedDB throws an opaque `DataError`.

use serde_json::Value;
use std::cmp::Ordering;

use super::document::{json_problem, json_type_name};
use super::error::CoreError;
use super::fields::Fields;
use super::json_text::{quoted_list, text};
use super::schema::Collection;

/// The argument of `collection.query`.
#[derive(Debug, Clone)]
pub struct QuerySpec {
    pub index: String,
    /// Present (possibly `null`, which then fails validation) or absent.
    pub equals: Option<Value>,
    pub range: Option<RangeSpec>,
    pub limit: Option<u32>,
    pub reverse: bool,
}

/// Bounds of a range query; a missing bound is open-ended.
#[derive(Debug, Clone)]
pub struct RangeSpec {
    pub lower: Option<Value>,
    pub upper: Option<Value>,
    pub lower_open: bool,
    pub upper_open: bool,
}

impl QuerySpec {
    fn parse(value: &Value) -> Result<QuerySpec, String> {
        let fields = Fields::new(value, "query", &["index", "equals", "range", "limit", "reverse"])?;
        let range = match fields.get("range") {
            None => None,
            Some(range) => {
                let bounds = Fields::new(range, "query.range", &["lower", "upper", "lowerOpen", "upperOpen"])?;
                Some(RangeSpec {
                    lower: bounds.get("lower").cloned(),
                    upper: bounds.get("upper").cloned(),
                    lower_open: bounds.flag("lowerOpen")?,
                    upper_open: bounds.flag("upperOpen")?,
                })
            }
        };
        Ok(QuerySpec {
            index: fields.string("index")?.to_owned(),
            equals: fields.get("equals").cloned(),
            range,
            limit: fields.positive_u32("limit")?,
            reverse: fields.flag("reverse")?,
        })
    }
}

/// Which keys of the index a query selects.
#[derive(Debug, Clone, PartialEq)]
pub enum KeySelection {
    All,
    Only(Value),
    Bound { lower: Option<Value>, upper: Option<Value>, lower_open: bool, upper_open: bool },
}

/// A query checked against the collection's declared indexes.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidQuery {
    pub index: String,
    pub selection: KeySelection,
    pub limit: Option<u32>,
    pub reverse: bool,
}

impl ValidQuery {
    /// Parses and validates a query given as JSON text.
    pub fn from_json(json: &str, collection: &Collection) -> Result<ValidQuery, CoreError> {
        let value: Value =
            super::read::json(json, false).map_err(|e| CoreError::InvalidQuery(json_problem(&e, json)))?;
        ValidQuery::validate(QuerySpec::parse(&value).map_err(CoreError::InvalidQuery)?, collection)
    }

    pub fn validate(spec: QuerySpec, collection: &Collection) -> Result<ValidQuery, CoreError> {
        if collection.index(&spec.index).is_none() {
            let declared: Vec<&str> = collection.schema.indexes.iter().map(|i| i.name.as_str()).collect();
            return Err(CoreError::InvalidQuery(format!(
                "collection \"{}\" has no index \"{}\" (declared: {})",
                collection.name(),
                spec.index,
                quoted_list(&declared)
            )));
        }
        let selection = match (spec.equals, spec.range) {
            (Some(_), Some(_)) => return Err(CoreError::InvalidQuery("give either equals or range, not both".into())),
            (Some(value), None) => {
                check_key("equals", &value)?;
                KeySelection::Only(value)
            }
            (None, Some(range)) => {
                for (name, bound) in [("range.lower", &range.lower), ("range.upper", &range.upper)] {
                    if let Some(value) = bound {
                        check_key(name, value)?;
                    }
                }
                if let (Some(lower), Some(upper)) = (&range.lower, &range.upper) {
                    let order = compare_keys(lower, upper);
                    let empty_point = order == Ordering::Equal && (range.lower_open || range.upper_open);
                    if order == Ordering::Greater || empty_point {
                        return Err(CoreError::InvalidQuery(format!(
                            "range is empty: lower {} is not below upper {}",
                            text(lower),
                            text(upper)
                        )));
                    }
                }
                if range.lower.is_none() && range.upper.is_none() {
                    KeySelection::All
                } else {
                    KeySelection::Bound {
                        lower: range.lower,
                        upper: range.upper,
                        lower_open: range.lower_open,
                        upper_open: range.upper_open,
                    }
                }
            }
            (None, None) => KeySelection::All,
        };
        Ok(ValidQuery { index: spec.index, selection, limit: spec.limit, reverse: spec.reverse })
    }
}

/// IndexedDB keys that JSON can express: finite numbers, strings, and arrays of keys.
fn check_key(what: &str, value: &Value) -> Result<(), CoreError> {
    match value {
        Value::Number(_) | Value::String(_) => Ok(()),
        Value::Array(items) => items.iter().try_for_each(|item| check_key(what, item)),
        other => Err(CoreError::InvalidQuery(format!(
            "{what} is {}, which is not an IndexedDB key (use numbers, strings or arrays of them; \
             booleans and null are never indexed)",
            json_type_name(other)
        ))),
    }
}

/// IndexedDB's key order: numbers < strings < arrays; arrays compare element-wise.
/// Strings compare by UTF-16 code units, as IndexedDB does.
pub fn compare_keys(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Array(_) => 2,
            _ => 3,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.encode_utf16().cmp(y.encode_utf16()),
        (Value::Array(x), Value::Array(y)) => {
            x.iter().zip(y).map(|(p, q)| compare_keys(p, q)).find(|o| o.is_ne()).unwrap_or(x.len().cmp(&y.len()))
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::schema::DatabaseSchema;
    use serde_json::json;

    fn todos() -> Collection {
        DatabaseSchema::from_json(
            r#"{"name":"d","collections":[{"name":"todos","keyPath":"id",
            "indexes":[{"name":"by_rank","keyPath":"rank"},{"name":"by_pair","keyPath":["a","b"]}]}]}"#,
        )
        .unwrap()
        .collections
        .remove(0)
    }

    fn query(json: &str) -> Result<ValidQuery, CoreError> {
        ValidQuery::from_json(json, &todos())
    }

    #[test]
    fn accepts_equals_range_and_all() {
        assert_eq!(query(r#"{"index":"by_rank","equals":3}"#).unwrap().selection, KeySelection::Only(json!(3)));
        let q = query(r#"{"index":"by_rank","range":{"lower":1,"upperOpen":true,"upper":5},"limit":2,"reverse":true}"#)
            .unwrap();
        assert!(matches!(q.selection, KeySelection::Bound { upper_open: true, lower_open: false, .. }));
        assert_eq!((q.limit, q.reverse), (Some(2), true));
        assert_eq!(query(r#"{"index":"by_rank"}"#).unwrap().selection, KeySelection::All);
        assert!(query(r#"{"index":"by_pair","equals":["x",1]}"#).is_ok());
    }

    #[test]
    fn rejects_bad_queries_with_invalid_query() {
        for bad in [
            r#"{"index":"nope"}"#,
            r#"{"index":"by_rank","equals":true}"#,
            r#"{"index":"by_rank","equals":null}"#,
            r#"{"index":"by_rank","equals":{"a":1}}"#,
            r#"{"index":"by_rank","equals":1,"range":{"lower":1}}"#,
            r#"{"index":"by_rank","range":{"lower":5,"upper":1}}"#,
            r#"{"index":"by_rank","range":{"lower":1,"upper":1,"lowerOpen":true}}"#,
            r#"{"index":"by_rank","limit":0}"#,
            r#"{"index":"by_rank","where":{}}"#,
            r#"{"equals":1}"#,
            r#"42"#,
        ] {
            let err = query(bad).unwrap_err();
            assert_eq!(err.code().as_str(), "INVALID_QUERY", "{bad}");
        }
    }

    #[test]
    fn key_order_matches_indexeddb() {
        let ordered = [json!(-1), json!(2.5), json!(""), json!("a"), json!("b"), json!([]), json!([1]), json!(["a"])];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(compare_keys(a, b), i.cmp(&j), "{a} vs {b}");
            }
        }
        // UTF-16 code-unit order, not code-point order: the surrogate 0xD83D sorts before 0xFF5E.
        assert_eq!(compare_keys(&json!("\u{1F600}"), &json!("\u{FF5E}")), Ordering::Less);
    }
}
