//! The JSON the etcd gateway speaks: requests built, answers read. Keys
//! and values travel in base64; int64s as strings, and an absent field is
//! 0 or false (proto3's JSON mapping).

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::{Client, EtcdError, Kv, Op, Result};

pub(crate) fn op_json(op: &Op) -> Value {
    match op {
        Op::Put { key, value, lease } => json!({"request_put": {
            "key": b64(key.as_bytes()), "value": b64(value), "lease": lease.to_string()}}),
        Op::DeletePrefix(prefix) => json!({"request_delete_range": {
            "key": b64(prefix.as_bytes()), "range_end": b64(&prefix_end(prefix))}}),
        Op::Get(key) => json!({"request_range": {"key": b64(key.as_bytes())}}),
    }
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The end of the range of every key starting with `prefix`.
pub(crate) fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte 0xff: the range runs to the end of the key space.
    vec![0]
}

/// etcd's int64s arrive as strings; an absent one is 0.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct I64(pub(crate) i64);

impl<'de> Deserialize<'de> for I64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => s.parse().map(I64).map_err(serde::de::Error::custom),
            Value::Number(n) => n
                .as_i64()
                .map(I64)
                .ok_or_else(|| serde::de::Error::custom("not an int64")),
            Value::Null => Ok(I64(0)),
            other => Err(serde::de::Error::custom(format!("not an int64: {other}"))),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Header {
    #[serde(default)]
    pub(crate) revision: I64,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireKv {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    create_revision: I64,
    #[serde(default)]
    pub(crate) mod_revision: I64,
    #[serde(default)]
    lease: I64,
}

impl WireKv {
    pub(crate) fn into_kv(self, client: &Client) -> Result<Kv> {
        let bad = |reason: String| EtcdError::BadAnswer {
            url: client.endpoints(),
            what: "a read",
            reason,
        };
        let engine = base64::engine::general_purpose::STANDARD;
        let key = engine
            .decode(&self.key)
            .map_err(|e| bad(format!("a key is not base64: {e}")))?;
        let key = String::from_utf8(key).map_err(|_| bad("a key is not UTF-8".into()))?;
        let value = engine
            .decode(&self.value)
            .map_err(|e| bad(format!("the value of {key} is not base64: {e}")))?;
        Ok(Kv {
            key,
            value,
            create_revision: self.create_revision.0,
            mod_revision: self.mod_revision.0,
            lease: self.lease.0,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RangeAnswer {
    #[serde(default)]
    pub(crate) header: Header,
    #[serde(default)]
    pub(crate) kvs: Vec<WireKv>,
    #[serde(default)]
    pub(crate) more: bool,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ResponseOp {
    #[serde(default)]
    pub(crate) response_range: Option<RangeAnswer>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TxnAnswer {
    #[serde(default)]
    pub(crate) header: Header,
    #[serde(default)]
    pub(crate) succeeded: bool,
    #[serde(default)]
    pub(crate) responses: Vec<ResponseOp>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LeaseAnswer {
    #[serde(default, rename = "ID")]
    pub(crate) id: I64,
    #[serde(default, rename = "TTL")]
    pub(crate) ttl: I64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_range_ends_after_its_last_key() {
        assert_eq!(prefix_end("/resetd/a/"), b"/resetd/a0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), vec![b'a', 0x80]);
    }

    #[test]
    fn int64s_read_from_strings_numbers_or_nothing() {
        let kv: WireKv =
            serde_json::from_value(json!({"key": "YQ==", "create_revision": "12", "lease": 3}))
                .unwrap();
        assert_eq!(
            (kv.create_revision.0, kv.mod_revision.0, kv.lease.0),
            (12, 0, 3)
        );
    }
}
