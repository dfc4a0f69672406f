//! The vault's own rules: what stays in clear, that a sealed value opens only whole and only
//! with its key, and what opening a database with or without a key decides.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::{base64, plan_key, unwrap_failed, KeyPlan, Vault, SEALED};
use crate::core::error::ErrorCode;
use crate::core::schema::{DatabaseSchema, DEAD_STORE, META_STORE, OUTBOX_STORE, VERSIONS_STORE};
use crate::core::tx::{Commit, Write};

fn schema() -> DatabaseSchema {
    let options = json!({
        "name": "vault",
        "collections": [{
            "name": "notes",
            "keyPath": "meta.id",
            "indexes": [
                { "name": "by_tag", "keyPath": "tag" },
                { "name": "by_pair", "keyPath": ["owner", "meta.rank"] },
                { "name": "by_labels", "keyPath": "labels", "multiEntry": true }
            ]
        }]
    });
    DatabaseSchema::from_json(&options.to_string()).expect("a valid schema")
}

fn vault(key: u8, prefix: u8) -> Vault {
    Vault::new(&[key; 32], [prefix; 16], &schema())
}

#[test]
fn a_record_keeps_its_key_and_index_keys_in_clear_and_nothing_else() {
    let v = vault(1, 1);
    let doc = json!({
        "meta": { "id": "n1", "rank": 3, "secret": "s" },
        "tag": "work", "owner": "ann", "labels": ["a", "b"],
        "body": "the plan", "flag": { "tag": "x" }
    });
    let sealed = v.seal("notes", &doc);
    let mut clear = sealed.clone();
    clear.as_object_mut().unwrap().remove(SEALED);
    assert_eq!(
        clear,
        json!({ "meta": { "id": "n1", "rank": 3 }, "tag": "work", "owner": "ann", "labels": ["a", "b"] })
    );
    let mut opened = sealed;
    v.open_tree(&mut opened).unwrap();
    assert_eq!(opened, doc);
}

#[test]
fn a_value_that_is_no_key_stays_sealed() {
    let v = vault(1, 1);
    // An object, a boolean or an array holding an object is not a key: IndexedDB would not index
    // it, so it is not copied, and no clear field can look like an envelope.
    let doc = json!({ "meta": { "id": 7 }, "tag": { SEALED: "forged" }, "owner": true, "labels": [{ "a": 1 }] });
    let mut sealed = v.seal("notes", &doc);
    sealed.as_object_mut().unwrap().remove(SEALED);
    assert_eq!(sealed, json!({ "meta": { "id": 7 }, "labels": [] }), "a multiEntry array keeps only its keys");
}

#[test]
fn the_internal_stores_keep_only_what_their_indexes_read() {
    let v = vault(1, 1);
    let entry = json!({ "id": "op1", "collection": "notes", "key": "n1", "op": "put", "value": { "body": "x" } });
    let sealed = v.seal(OUTBOX_STORE, &entry);
    let clear: Vec<&String> = sealed.as_object().unwrap().keys().filter(|k| *k != SEALED).collect();
    assert_eq!(clear, vec!["collection", "key"], "the by_doc index reads [collection, key]");
    for store in [META_STORE, DEAD_STORE, VERSIONS_STORE] {
        let sealed = v.seal(store, &json!({ "v": 3, "b": { "body": "x" } }));
        assert_eq!(sealed.as_object().unwrap().len(), 1, "{store} keeps nothing in clear");
    }
    // A bare value (a version number, a cursor) is sealed as well.
    let mut number = v.seal(VERSIONS_STORE, &json!(12));
    v.open_tree(&mut number).unwrap();
    assert_eq!(number, json!(12));
}

#[test]
fn a_commit_is_sealed_write_by_write_and_deletes_are_left_alone() {
    let v = vault(1, 1);
    let mut commit = Commit {
        writes: vec![
            Write::put("notes", json!({ "meta": { "id": "a" }, "body": "x" }), None),
            Write::Add {
                store: OUTBOX_STORE.into(),
                value: json!({ "collection": "notes", "key": "a", "op": "delete" }),
            },
            Write::delete("notes", json!("b")),
        ],
        changes: Vec::new(),
    };
    v.seal_commit(&mut commit);
    let Write::Put { value, .. } = &commit.writes[0] else { panic!("a put") };
    assert!(value.get(SEALED).is_some() && value.get("body").is_none());
    let Write::Add { value, .. } = &commit.writes[1] else { panic!("an add") };
    assert!(value.get(SEALED).is_some() && value.get("op").is_none());
    assert_eq!(commit.writes[2], Write::delete("notes", json!("b")));
}

#[test]
fn results_open_wherever_an_envelope_sits_and_clear_values_stay() {
    let v = vault(1, 1);
    let doc = json!({ "meta": { "id": "a" }, "body": "x" });
    let entry = json!({ "collection": "notes", "key": "a", "op": "put", "value": v.seal("notes", &doc) });
    let lease = json!({ "owner": "tab-1", "expires": 5 });
    let mut results = json!([v.seal("notes", &doc), [[1, entry.clone()]], lease.clone(), null, 3]);
    v.open_tree(&mut results).unwrap();
    let mut expected_entry = entry;
    expected_entry["value"] = doc.clone();
    assert_eq!(results, json!([doc, [[1, expected_entry]], lease, null, 3]));
}

#[test]
fn a_changed_envelope_or_another_key_is_an_error_never_garbage() {
    let v = vault(1, 1);
    let sealed = v.seal("notes", &json!({ "meta": { "id": "a" }, "body": "x" }));
    let text = sealed[SEALED].as_str().unwrap().to_owned();
    let mut bytes = base64::decode(&text).unwrap();
    for at in [0, 30, bytes.len() - 1] {
        bytes[at] ^= 1;
        let mut tampered = json!({ SEALED: base64::encode(&bytes) });
        let error = v.open_tree(&mut tampered).unwrap_err();
        assert_eq!(error.code(), ErrorCode::Storage);
        bytes[at] ^= 1;
    }
    let mut other = sealed.clone();
    assert!(vault(2, 1).open_tree(&mut other).is_err(), "another key");
    for broken in ["", "AAAA", "not base64!", "QUJD"] {
        assert!(v.open_text(broken).is_none(), "{broken:?}");
    }
    let mut truncated = json!({ SEALED: &text[..text.len() - 4] });
    assert!(v.open_tree(&mut truncated).is_err());
}

#[test]
fn no_two_seals_share_a_nonce_and_vaults_of_other_page_loads_open_each_other() {
    let v = vault(1, 1);
    let a = v.seal_text(b"same");
    let b = v.seal_text(b"same");
    assert_ne!(a, b);
    assert_ne!(base64::decode(&a).unwrap()[..24], base64::decode(&b).unwrap()[..24]);
    let other_load = vault(1, 2);
    assert_eq!(other_load.open_text(&a).unwrap(), b"same");
}

#[test]
fn migrations_and_reads_cross_as_json() {
    let v = vault(1, 1);
    let sealed = v.seal_json(r#"[["notes", {"meta": {"id": "a"}, "body": "x"}], ["__wharf_meta", 5]]"#).unwrap();
    let opened = v.open_json(&sealed).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&opened).unwrap(), json!([{ "meta": { "id": "a" }, "body": "x" }, 5]));
    assert!(v.seal_json(r#"[["notes"]]"#).is_err());
    assert!(v.seal_json("{").is_err());
}

#[test]
fn opening_decides_from_the_key_record_the_contents_and_the_key() {
    let record = json!({ "cipher": "xchacha20poly1305", "iv": "aXY=", "wrapped": "d3JhcHBlZA==" });
    assert_eq!(plan_key(&Value::Null, 0, false), Ok(KeyPlan::Plain));
    assert_eq!(plan_key(&Value::Null, 5, false), Ok(KeyPlan::Plain));
    assert_eq!(plan_key(&Value::Null, 0, true), Ok(KeyPlan::Create));
    assert_eq!(plan_key(&Value::Null, 1, true).unwrap_err().code(), ErrorCode::EncryptionMismatch);
    assert_eq!(plan_key(&record, 0, false).unwrap_err().code(), ErrorCode::EncryptionMismatch);
    assert_eq!(plan_key(&record, 9, true), Ok(KeyPlan::Unwrap { iv: "aXY=".into(), wrapped: "d3JhcHBlZA==".into() }));
    let future = json!({ "cipher": "aes-siv", "iv": "", "wrapped": "" });
    assert_eq!(plan_key(&future, 0, true).unwrap_err().code(), ErrorCode::Storage);
    assert_eq!(plan_key(&json!("junk"), 0, true).unwrap_err().code(), ErrorCode::Storage);
    assert_eq!(unwrap_failed("OperationError").code(), ErrorCode::WrongKey);
    assert_eq!(unwrap_failed("InvalidAccessError").code(), ErrorCode::InvalidOptions);
}

proptest! {
    #[test]
    fn base64_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..100)) {
        let text = base64::encode(&bytes);
        prop_assert_eq!(text.len() % 4, 0);
        prop_assert_eq!(base64::decode(&text), Some(bytes));
    }

    #[test]
    fn any_document_opens_as_it_was_sealed(body in ".{0,40}", n in any::<i64>(), rank in any::<u32>()) {
        let v = vault(3, 4);
        let doc = json!({ "meta": { "id": body.clone(), "rank": rank }, "body": body, "n": n });
        let mut sealed = v.seal("notes", &doc);
        v.open_tree(&mut sealed).unwrap();
        prop_assert_eq!(sealed, doc);
    }
}

#[test]
fn a_collection_whose_indexes_change_is_sealed_again_before_any_migration() {
    use crate::core::upgrade::{StoreShape, UpgradeStep};
    let schema = schema();
    let mut existing = schema.required_stores();
    let notes = existing.iter_mut().find(|s| s.name == "notes").unwrap();
    notes.indexes.retain(|i| i.name == "by_tag"); // an older version had one index
    let migrate = UpgradeStep::Migrate {
        store: "notes".into(),
        from: 1,
        to: 2,
        marker: None,
        drop: Vec::new(),
        rebuild: Vec::new(),
    };
    let created = |name: &str| UpgradeStep::CreateIndex {
        store: "notes".into(),
        index: schema.collections[0].schema.indexes.iter().find(|i| i.name == name).unwrap().clone(),
    };
    let steps = vec![created("by_pair"), created("by_labels"), migrate.clone()];
    let planned = super::with_reseals(steps, &existing, &schema);
    assert_eq!(
        planned,
        vec![created("by_pair"), created("by_labels"), UpgradeStep::Reseal { store: "notes".into() }, migrate]
    );
    // A store created by this upgrade holds nothing to seal again.
    let fresh: Vec<StoreShape> = existing.into_iter().filter(|s| s.name != "notes").collect();
    assert_eq!(super::with_reseals(vec![created("by_pair")], &fresh, &schema), vec![created("by_pair")]);
    assert!(UpgradeStep::encode_plan(&planned).contains(r#"{"reseal":{"store":"notes"}}"#));
}

#[test]
fn clear_fields_follow_what_indexeddb_would_index() {
    let options = json!({
        "name": "vault",
        "collections": [{
            "name": "notes", "keyPath": "id",
            "indexes": [
                { "name": "by_tag", "keyPath": "tags", "multiEntry": true },
                { "name": "by_title_length", "keyPath": "title.length" },
                { "name": "by_count", "keyPath": "items.length" }
            ]
        }]
    });
    let v = Vault::new(&[1; 32], [1; 16], &DatabaseSchema::from_json(&options.to_string()).unwrap());
    let doc = json!({ "id": "a", "tags": ["x", null, { "no": 1 }, "y"], "title": "né😀", "items": [1, 2, 3] });
    let mut clear = v.seal("notes", &doc);
    clear.as_object_mut().unwrap().remove(SEALED);
    // A multiEntry index files the record under each element that is a key; `length` counts
    // UTF-16 units of a string, and the elements of an array.
    assert_eq!(clear, json!({ "id": "a", "tags": ["x", "y"], "title": { "length": 4 }, "items": { "length": 3 } }));
}

#[test]
fn a_value_that_does_not_open_is_an_error_for_reads_and_absent_for_the_sync_path() {
    let v = vault(1, 1);
    let good = v.seal("notes", &json!({ "meta": { "id": "a" }, "body": "x" }));
    let bad = json!({ SEALED: vault(2, 1).seal_text(b"{}") });
    let mut strict = json!([good.clone(), bad.clone()]);
    assert!(v.open_tree(&mut strict).is_err());
    let mut lenient = json!([good, { "collection": "notes", "key": "a", "value": bad }]);
    v.open_or_drop(&mut lenient);
    assert_eq!(
        lenient,
        json!([{ "meta": { "id": "a" }, "body": "x" }, { "collection": "notes", "key": "a", "value": null }])
    );
}
