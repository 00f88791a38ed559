//! Canonical JSON: object keys sorted, no whitespace, whatever serde_json features are enabled.
//!
//! Fixture bytes must not change when another crate in the build turns on serde_json's
//! `preserve_order`, so documents are written by walking the value here.

use serde_json::Value;

/// Serialises `value` compactly with every object's keys in byte order.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|left, right| left.0.cmp(right.0));
            out.push(b'{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_scalar(out, &Value::String(key.clone()));
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        scalar => write_scalar(out, scalar),
    }
}

fn write_scalar(out: &mut Vec<u8>, scalar: &Value) {
    serde_json::to_writer(&mut *out, scalar)
        .expect("serialising a JSON scalar into memory cannot fail");
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_are_sorted_at_every_level() {
        let value = json!({"b": 1, "a": {"z": [true, null], "y": "s\"q"}});
        assert_eq!(
            String::from_utf8(canonical_json(&value)).unwrap(),
            r#"{"a":{"y":"s\"q","z":[true,null]},"b":1}"#
        );
    }

    #[test]
    fn output_parses_back_to_the_same_value() {
        let value = json!({"n": 1.5, "list": [{"k": "v"}, 3], "empty": {}});
        let bytes = canonical_json(&value);
        let parsed: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(parsed, value);
        assert_ne!(canonical_json(&json!({"n": 2})), bytes);
    }
}
