//! What a step *is*, independent of where it sits in the file: its kind and
//! the fields that change what it does to the database. The journal keeps
//! this per executed step, so a resume or a rollback matches journal rows to
//! plan steps by meaning, and notices an edit, instead of trusting positions.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::model::Step;

/// Fields that only tune or describe a step: changing them does not change
/// what it does, so they are left out of its identity.
const NOT_IDENTITY: &[&str] = &[
    "batch_size",
    "vacuum_behind",
    "allow_unsafe",
    "chunk",
    "workers",
];

/// The step's identifying fields as canonical JSON (sorted keys; the
/// display-only `name` removed where it names nothing in the database).
pub fn spec(step: &Step) -> Value {
    let mut value = serde_json::to_value(step).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        strip(map);
        // `name` names the index, trigger or constraint for these kinds;
        // elsewhere it is only a label.
        if !matches!(
            step,
            Step::CreateIndex(_) | Step::SyncTrigger(_) | Step::Constraint(_)
        ) {
            map.remove("name");
        }
    }
    value
}

fn strip(map: &mut Map<String, Value>) {
    map.retain(|k, v| !NOT_IDENTITY.contains(&k.as_str()) && !v.is_null());
    for v in map.values_mut() {
        if let Value::Object(inner) = v {
            strip(inner);
        }
    }
}

/// A short hash of [`spec`]: equal exactly when the steps do the same.
pub fn fingerprint(step: &Step) -> String {
    fingerprint_of(&spec(step))
}

/// The fingerprint of a recorded spec.
pub fn fingerprint_of(spec: &Value) -> String {
    // serde_json's map is ordered by key: the text is canonical.
    let text = spec.to_string();
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(&digest[..12])
}

/// How two specs differ, field by field, in words ("`rollback`: was …, now …").
pub fn differences(recorded: &Value, now: &Value) -> Vec<String> {
    let empty = Map::new();
    let old = recorded.as_object().unwrap_or(&empty);
    let new = now.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| match (old.get(k), new.get(k)) {
            (Some(a), Some(b)) if a == b => None,
            (Some(a), Some(b)) => Some(format!("`{k}`: was {}, now {}", show(a), show(b))),
            (Some(a), None) => Some(format!("`{k}`: was {}, now unset", show(a))),
            (None, Some(b)) => Some(format!("`{k}`: was unset, now {}", show(b))),
            (None, None) => None,
        })
        .collect()
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    }
}

/// The fields whose change makes a batched step's checkpoint meaningless.
pub fn batch_identity_changed(recorded: &Value, now: &Value) -> Option<Vec<String>> {
    const FIELDS: &[&str] = &["table", "key", "set", "where", "columns", "from", "to"];
    let changed: Vec<String> = FIELDS
        .iter()
        .filter(|f| recorded.get(**f) != now.get(**f))
        .map(|f| f.to_string())
        .collect();
    (!changed.is_empty()).then_some(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(toml_text: &str) -> Step {
        toml::from_str(toml_text).expect("step parses")
    }

    #[test]
    fn layout_labels_and_tuning_do_not_change_identity() {
        let a = step("kind = \"backfill\"\ntable = \"t\"\nkey = \"id\"\nset = \"c = 1\"");
        let b = step(
            "# a comment\nkind = \"backfill\"\nname = \"fill c\"\n\nset = \"c = 1\"\nkey = \"id\"\ntable = \"t\"\nbatch_size = 10\nvacuum_behind = false",
        );
        assert_eq!(fingerprint(&a), fingerprint(&b));
    }

    #[test]
    fn a_changed_field_changes_identity_and_is_named() {
        let a = step(
            "kind = \"sql\"\nsql = \"ALTER TABLE t ADD COLUMN c int\"\nrollback = \"ALTER TABLE t DROP COLUMN c\"",
        );
        let b = step(
            "kind = \"sql\"\nsql = \"ALTER TABLE t ADD COLUMN c int\"\nrollback = \"ALTER TABLE t DROP COLUMN d\"",
        );
        assert_ne!(fingerprint(&a), fingerprint(&b));
        let diff = differences(&spec(&a), &spec(&b));
        assert_eq!(diff.len(), 1, "{diff:?}");
        assert!(diff[0].starts_with("`rollback`: was `ALTER TABLE t DROP COLUMN c`"));
    }

    #[test]
    fn an_index_name_is_identity() {
        let a = step("kind = \"create_index\"\nname = \"i1\"\ntable = \"t\"\ncolumns = [\"c\"]");
        let b = step("kind = \"create_index\"\nname = \"i2\"\ntable = \"t\"\ncolumns = [\"c\"]");
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }

    #[test]
    fn batch_identity_names_the_fields_that_moved() {
        let a = step("kind = \"backfill\"\ntable = \"t\"\nkey = \"id\"\nset = \"c = 1\"");
        let b = step(
            "kind = \"backfill\"\ntable = \"t\"\nkey = \"id\"\nset = \"c = 2\"\nwhere = \"c IS NULL\"",
        );
        assert_eq!(
            batch_identity_changed(&spec(&a), &spec(&b)),
            Some(vec!["set".to_string(), "where".to_string()])
        );
        assert_eq!(batch_identity_changed(&spec(&a), &spec(&a)), None);
    }
}
