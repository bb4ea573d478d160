//! Reading JSON without a Rust JSON library: the browser's `JSON.parse` builds the value and
//! the client reads the few fields it needs through [`Json`]. A Rust decoder for the protocol's
//! tagged enums cost about 100 KB of the bundle; this costs almost nothing.
//!
//! Native tests read `serde_json::Value`s through the same trait, so the decoders are tested
//! against what the server's own serde types write.

use wasm_bindgen::JsValue;

/// A parsed JSON value, read field by field.
pub trait Json: Sized {
    /// The member `key` of an object.
    fn get(&self, key: &str) -> Option<Self>;
    fn as_text(&self) -> Option<String>;
    fn as_number(&self) -> Option<f64>;
    fn as_flag(&self) -> Option<bool>;
    /// The elements of an array.
    fn items(&self) -> Option<Vec<Self>>;

    fn text(&self, key: &str) -> Option<String> {
        self.get(key)?.as_text()
    }

    fn number(&self, key: &str) -> Option<f64> {
        self.get(key)?.as_number()
    }

    /// A non-negative whole number (JSON numbers are doubles: exact up to 2^53).
    fn whole(&self, key: &str) -> Option<u64> {
        let n = self.number(key)?;
        (n >= 0.0 && n.fract() == 0.0 && n < 9_007_199_254_740_992.0).then_some(n as u64)
    }

    /// A flag that is false when absent.
    fn flag(&self, key: &str) -> bool {
        self.get(key).and_then(|v| v.as_flag()).unwrap_or(false)
    }
}

/// Parses JSON text with the browser's parser.
pub fn parse(text: &str) -> Option<JsValue> {
    js_sys::JSON::parse(text).ok()
}

impl Json for JsValue {
    fn get(&self, key: &str) -> Option<Self> {
        if !self.is_object() {
            return None;
        }
        let v = js_sys::Reflect::get(self, &JsValue::from_str(key)).ok()?;
        (!v.is_undefined() && !v.is_null()).then_some(v)
    }

    fn as_text(&self) -> Option<String> {
        self.as_string()
    }

    fn as_number(&self) -> Option<f64> {
        self.as_f64()
    }

    fn as_flag(&self) -> Option<bool> {
        self.as_bool()
    }

    fn items(&self) -> Option<Vec<Self>> {
        js_sys::Array::is_array(self).then(|| js_sys::Array::from(self).iter().collect())
    }
}

#[cfg(test)]
impl Json for serde_json::Value {
    fn get(&self, key: &str) -> Option<Self> {
        self.as_object()?.get(key).filter(|v| !v.is_null()).cloned()
    }

    fn as_text(&self) -> Option<String> {
        self.as_str().map(str::to_owned)
    }

    fn as_number(&self) -> Option<f64> {
        self.as_f64()
    }

    fn as_flag(&self) -> Option<bool> {
        self.as_bool()
    }

    fn items(&self) -> Option<Vec<Self>> {
        self.as_array().cloned()
    }
}

/// Writes JSON text: the few shapes the client sends (commands, tab messages).
#[derive(Default)]
pub struct Writer {
    out: String,
    /// An object is open and already has a member (the next one needs a comma).
    more: bool,
}

impl Writer {
    pub fn object() -> Self {
        Self {
            out: "{".into(),
            more: false,
        }
    }

    fn key(&mut self, key: &str) {
        if std::mem::replace(&mut self.more, true) {
            self.out.push(',');
        }
        quote(&mut self.out, key);
        self.out.push(':');
    }

    pub fn text(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        quote(&mut self.out, value);
        self
    }

    pub fn opt_text(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.text(key, v),
            None => self,
        }
    }

    /// A whole number (ids, sequence numbers: below 2^53, so JavaScript reads them exactly).
    pub fn number(mut self, key: &str, value: u64) -> Self {
        self.key(key);
        push_number(&mut self.out, value);
        self
    }

    pub fn flag(mut self, key: &str, value: bool) -> Self {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
        self
    }

    /// A member whose value is JSON text already.
    pub fn raw(mut self, key: &str, json: &str) -> Self {
        self.key(key);
        self.out.push_str(json);
        self
    }

    pub fn texts(mut self, key: &str, values: &[String]) -> Self {
        self.key(key);
        self.out.push('[');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            quote(&mut self.out, v);
        }
        self.out.push(']');
        self
    }

    pub fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// A JSON array of values that are JSON text already.
pub fn array(items: &[String]) -> String {
    let mut out = String::from("[");
    out.push_str(&items.join(","));
    out.push(']');
    out
}

fn push_number(out: &mut String, mut n: u64) {
    // Digits by hand: `format!` would pull in the formatting machinery.
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[i..].iter().map(|&d| d as char));
}

/// Appends `s` as a JSON string.
fn quote(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                out.push_str("\\u00");
                out.push(HEX[(c as usize) >> 4] as char);
                out.push(HEX[(c as usize) & 15] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn writes_what_serde_reads() {
        let text = Writer::object()
            .text("s", "a \"q\" \\ \n\u{1}é")
            .number("n", 9_007_199_254_740_991)
            .number("z", 0)
            .flag("f", true)
            .opt_text("none", None)
            .raw("r", "[1]")
            .texts("l", &["x".into(), "y".into()])
            .finish();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            json!({"s": "a \"q\" \\ \n\u{1}é", "n": 9_007_199_254_740_991u64, "z": 0,
                   "f": true, "r": [1], "l": ["x", "y"]})
        );
        assert_eq!(array(&["1".into(), "{}".into()]), "[1,{}]");
    }

    #[test]
    fn reads_fields() {
        let v = json!({"a": 3, "b": -1, "c": 1.5, "d": null, "t": "x", "f": true});
        assert_eq!(v.whole("a"), Some(3));
        assert_eq!(v.whole("b"), None);
        assert_eq!(v.whole("c"), None);
        assert!(Json::get(&v, "d").is_none(), "null reads as absent");
        assert_eq!(v.text("t").as_deref(), Some("x"));
        assert!(v.flag("f") && !v.flag("missing"));
    }
}
