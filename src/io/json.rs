//! A small, strict JSON value with its parser and writer: the `cfg.json` files of SAELens
//! and sparsify, and the headers of safetensors files.
//!
//! [`parse`] accepts exactly RFC 8259 JSON text in UTF-8 and refuses, with the byte offset
//! of the problem: trailing commas, comments, leading zeros, `NaN` / `Infinity`, numbers
//! beyond the range of f64, invalid escapes, lone surrogates, control characters in
//! strings, invalid UTF-8, anything but whitespace after the value, an object key that
//! appears twice, and nesting deeper than [`MAX_DEPTH`] (so that no input can exhaust the
//! stack). It never panics, and what it allocates is bounded by a constant multiple of the
//! input's length.
//!
//! Objects keep their members in input order. The writer ([`Value::to_compact`],
//! [`Value::to_pretty`]) writes members in that order and is otherwise byte for byte
//! serde_json's `to_string` / `to_string_pretty`: the same escapes, two-space indentation,
//! integers as integers and floats in their shortest round-trip digits, in fixed notation
//! for decimal exponents −5 to 15 (`0.00001`, `1000000000000000.0`) and as `1e-6`,
//! `1.5e+16` outside.

use std::fmt;

/// The deepest nesting of arrays and objects [`parse`] accepts (serde_json's limit).
pub(crate) const MAX_DEPTH: usize = 128;

/// A JSON number: an integer when the text was one that fits 64 bits, else a float.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Number {
    /// A non-negative integer.
    PosInt(u64),
    /// A negative integer.
    NegInt(i64),
    /// A finite float (any number with a fraction or an exponent, or an integer out of the
    /// 64-bit ranges).
    Float(f64),
}

/// A JSON value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Value>),
    /// Members in input (or construction) order; [`parse`] guarantees distinct keys.
    Object(Vec<(String, Value)>),
}

/// Why [`parse`] refused its input.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ParseError {
    /// Byte offset of the problem in the input.
    pub offset: usize,
    pub kind: ErrorKind,
}

/// The kinds of [`ParseError`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ErrorKind {
    /// Not JSON: what was wrong.
    Syntax(String),
    /// An object holds `key` twice (offset: its second occurrence). `depth` is the
    /// object's nesting (1 for the top-level value), `parent` the key of the member holding
    /// it (`None` at the top level or inside an array).
    DuplicateKey {
        key: String,
        depth: usize,
        parent: Option<String>,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Syntax(what) => write!(f, "{what} at byte {}", self.offset),
            ErrorKind::DuplicateKey { key, parent, .. } => {
                write!(f, "key `{}`", key.escape_debug())?;
                if let Some(p) = parent {
                    write!(f, " of `{}`", p.escape_debug())?;
                }
                write!(f, " appears twice (at byte {})", self.offset)
            }
        }
    }
}

impl std::error::Error for ParseError {}

impl Value {
    /// The member `key` of an object (`None` for other values).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    pub fn as_object(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A non-negative integer (not a float, even a whole one: `2.0` is `None`).
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(Number::PosInt(n)) => Some(*n),
            _ => None,
        }
    }

    /// An object of `members` in key order (as serde_json's default map writes them).
    pub fn sorted_object(mut members: Vec<(String, Value)>) -> Value {
        members.sort_by(|a, b| a.0.cmp(&b.0));
        Value::Object(members)
    }

    /// The compact text (serde_json's `to_string`).
    pub fn to_compact(&self) -> String {
        let mut out = String::new();
        write_value(&mut out, self, None);
        out
    }

    /// The indented text (serde_json's `to_string_pretty`), without a final newline.
    pub fn to_pretty(&self) -> String {
        let mut out = String::new();
        write_value(&mut out, self, Some(0));
        out
    }
}

/// The compact text.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_compact())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Number(Number::PosInt(n))
    }
}

impl From<usize> for Value {
    fn from(n: usize) -> Value {
        Value::Number(Number::PosInt(n as u64))
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        match u64::try_from(n) {
            Ok(u) => Value::Number(Number::PosInt(u)),
            Err(_) => Value::Number(Number::NegInt(n)),
        }
    }
}

/// `null` when not finite (as serde_json).
impl From<f64> for Value {
    fn from(x: f64) -> Value {
        if x.is_finite() {
            Value::Number(Number::Float(x))
        } else {
            Value::Null
        }
    }
}

/// Widened to f64 (as serde_json's `Value`: `0.1f32` is written `0.10000000149011612`).
impl From<f32> for Value {
    fn from(x: f32) -> Value {
        Value::from(x as f64)
    }
}

// ---------------------------------------------------------------------------------------
// Writing

fn write_value(out: &mut String, v: &Value, indent: Option<usize>) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, *n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                new_line(out, indent.map(|d| d + 1));
                write_value(out, item, indent.map(|d| d + 1));
            }
            if !items.is_empty() {
                new_line(out, indent);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (k, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                new_line(out, indent.map(|d| d + 1));
                write_string(out, k);
                out.push_str(if indent.is_some() { ": " } else { ":" });
                write_value(out, item, indent.map(|d| d + 1));
            }
            if !members.is_empty() {
                new_line(out, indent);
            }
            out.push('}');
        }
    }
}

/// A newline and `depth` levels of two-space indentation (nothing when compact).
fn new_line(out: &mut String, depth: Option<usize>) {
    if let Some(d) = depth {
        out.push('\n');
        (0..d).for_each(|_| out.push_str("  "));
    }
}

/// `s` quoted, with serde_json's escapes (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, and
/// `\u00xx` for the other control characters).
pub(crate) fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_number(out: &mut String, n: Number) {
    match n {
        Number::PosInt(u) => out.push_str(&u.to_string()),
        Number::NegInt(i) => out.push_str(&i.to_string()),
        Number::Float(x) => write_f64(out, x),
    }
}

/// `x` in its shortest round-trip digits, laid out as serde_json lays them out.
fn write_f64(out: &mut String, x: f64) {
    if !x.is_finite() {
        out.push_str("null");
        return;
    }
    if x.is_sign_negative() {
        out.push('-');
    }
    if x == 0.0 {
        out.push_str("0.0");
        return;
    }
    let (digits, exp) = shortest_digits(x.abs());
    let len = digits.len() as i32;
    if (-5..=15).contains(&exp) {
        if len - 1 <= exp {
            // 1234e7 → 12340000000.0
            out.extend(digits.iter().map(|&d| d as char));
            (0..exp - (len - 1)).for_each(|_| out.push('0'));
            out.push_str(".0");
        } else if exp >= 0 {
            // 1234e-2 → 12.34
            let point = exp as usize + 1;
            out.extend(digits[..point].iter().map(|&d| d as char));
            out.push('.');
            out.extend(digits[point..].iter().map(|&d| d as char));
        } else {
            // 1234e-6 → 0.001234
            out.push_str("0.");
            (0..-exp - 1).for_each(|_| out.push('0'));
            out.extend(digits.iter().map(|&d| d as char));
        }
    } else {
        // 1234e30 → 1.234e+33
        out.push(digits[0] as char);
        if len > 1 {
            out.push('.');
            out.extend(digits[1..].iter().map(|&d| d as char));
        }
        out.push_str(if exp >= 0 { "e+" } else { "e-" });
        out.push_str(&exp.unsigned_abs().to_string());
    }
}

/// The shortest decimal digits that read back as `x` (finite, > 0) and the decimal
/// exponent of the first: `(digits, e)` for `d.ddd × 10^e`. When two such strings are
/// equally close to `x` and both read back as `x`, the one ending in an even digit
/// (serde_json's choice).
fn shortest_digits(x: f64) -> (Vec<u8>, i32) {
    // Rust's `{:e}` gives shortest digits, breaking ties upwards.
    let (mut digits, exp) = split_scientific(&format!("{x:e}"));
    // A tie: `x` is exactly the shortest digits' truncation followed by a 5. Every double
    // has at most 767 significant digits, so 800 are its exact expansion.
    let (exact, exact_exp) = split_scientific(&format!("{x:.800e}"));
    let n = digits.len();
    let tie = exact_exp == exp
        && exact.get(n) == Some(&b'5')
        && exact[n + 1..].iter().all(|&d| d == b'0');
    if tie && digits[n - 1] % 2 == 1 {
        let mut other = exact[..n].to_vec();
        if digits == other {
            // Rounded down to an odd digit: the other candidate is one unit up.
            let mut i = n;
            while i > 0 {
                i -= 1;
                if other[i] == b'9' {
                    other[i] = b'0';
                } else {
                    other[i] += 1;
                    break;
                }
            }
            if i == 0 && other[0] == b'0' {
                other.insert(0, b'1'); // all nines carried: not a candidate of n digits
            }
        }
        // The even candidate, unless it falls outside the interval that reads back as `x`
        // (the interval below a power of two is half as wide).
        let text = format!("0.{}e{}", String::from_utf8_lossy(&other), exp + 1);
        if other.len() == n && text.parse::<f64>() == Ok(x) {
            digits = other;
        }
    }
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    (digits, exp)
}

/// `d.ddde±x` as its digits and exponent.
fn split_scientific(sci: &str) -> (Vec<u8>, i32) {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let digits = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    (digits, exp.parse().unwrap_or(0))
}

// ---------------------------------------------------------------------------------------
// Parsing

/// Parses `bytes` as one JSON value (see the module docs for what is refused).
///
/// # Errors
/// [`ParseError`]: what was wrong and where.
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ParseError {
        offset: e.valid_up_to(),
        kind: ErrorKind::Syntax("invalid UTF-8".into()),
    })?;
    let mut p = Parser {
        text,
        bytes,
        pos: 0,
    };
    p.skip_whitespace();
    let v = p.value(0, None)?;
    p.skip_whitespace();
    if p.pos < bytes.len() {
        return Err(p.error("trailing characters after the JSON value"));
    }
    Ok(v)
}

struct Parser<'a> {
    /// The input, valid UTF-8 (slices are taken at ASCII bytes only).
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

fn syntax_at(offset: usize, what: impl Into<String>) -> ParseError {
    ParseError {
        offset,
        kind: ErrorKind::Syntax(what.into()),
    }
}

impl Parser<'_> {
    fn error(&self, what: impl Into<String>) -> ParseError {
        syntax_at(self.pos, what)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// A value at nesting `depth` (the number of arrays and objects around it), member of
    /// the object member `parent` if any.
    fn value(&mut self, depth: usize, parent: Option<&str>) -> Result<Value, ParseError> {
        match self.peek() {
            None => Err(self.error("unexpected end of input, expected a value")),
            Some(b'{' | b'[') if depth >= MAX_DEPTH => {
                Err(self.error(format!("arrays and objects nested deeper than {MAX_DEPTH}")))
            }
            Some(b'{') => self.object(depth + 1, parent),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(c) => Err(self.error(format!("unexpected {}, expected a value", describe(c)))),
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Value, ParseError> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.error(format!("invalid literal, expected `{word}`")))
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.pos += 1; // [
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth, None)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.error("expected `,` or `]` in an array")),
            }
        }
    }

    fn object(&mut self, depth: usize, parent: Option<&str>) -> Result<Value, ParseError> {
        self.pos += 1; // {
        let mut members: Vec<(String, Value)> = Vec::new();
        let mut key_offsets = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key in an object"));
            }
            let at = self.pos;
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.error("expected `:` after an object key"));
            }
            self.pos += 1;
            self.skip_whitespace();
            let v = self.value(depth, Some(&key))?;
            members.push((key, v));
            key_offsets.push(at);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error("expected `,` or `}` in an object")),
            }
        }
        check_distinct(&members, &key_offsets, depth, parent)?;
        Ok(Value::Object(members))
    }

    /// A string, at its opening quote.
    fn string(&mut self) -> Result<String, ParseError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        let mut run = self.pos;
        loop {
            match self.peek() {
                None => return Err(syntax_at(open, "unterminated string")),
                Some(b'"') => {
                    out.push_str(&self.text[run..self.pos]);
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    out.push_str(&self.text[run..self.pos]);
                    out.push(self.escape()?);
                    run = self.pos;
                }
                Some(c @ 0..=0x1f) => {
                    return Err(self.error(format!(
                        "control character 0x{c:02x} in a string (escape it)"
                    )))
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    /// An escape, at its backslash.
    fn escape(&mut self) -> Result<char, ParseError> {
        let at = self.pos;
        let c = self.bytes.get(at + 1).copied();
        self.pos += 2;
        Ok(match c {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let hi = self.hex4(at)?;
                let code = match hi {
                    0xD800..=0xDBFF => {
                        if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                            return Err(syntax_at(
                                at,
                                format!("lone surrogate \\u{hi:04X} (no low surrogate follows)"),
                            ));
                        }
                        self.pos += 2;
                        let lo = self.hex4(at)?;
                        if !(0xDC00..=0xDFFF).contains(&lo) {
                            return Err(syntax_at(
                                at,
                                format!("surrogate \\u{hi:04X} followed by \\u{lo:04X}, not a low surrogate"),
                            ));
                        }
                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                    }
                    0xDC00..=0xDFFF => {
                        return Err(syntax_at(
                            at,
                            format!("lone surrogate \\u{hi:04X} (a low surrogate first)"),
                        ))
                    }
                    _ => hi,
                };
                char::from_u32(code).ok_or_else(|| syntax_at(at, "invalid \\u escape"))?
            }
            Some(c) => return Err(syntax_at(at, format!("invalid escape `\\{}`", describe(c)))),
            None => return Err(syntax_at(at, "unterminated string")),
        })
    }

    /// Four hex digits after `\u` (the escape at `at`).
    fn hex4(&mut self, at: usize) -> Result<u32, ParseError> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| syntax_at(at, "\\u escape without four hex digits"))?;
        let mut v = 0;
        for &d in digits {
            let h = (d as char)
                .to_digit(16)
                .ok_or_else(|| syntax_at(at, "\\u escape without four hex digits"))?;
            v = v * 16 + h;
        }
        self.pos += 4;
        Ok(v)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if matches!(self.peek(), Some(b'0'..=b'9')) {
                    return Err(syntax_at(start, "leading zero in a number"));
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("expected a digit in a number")),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            integer = false;
            if self.digits() == 0 {
                return Err(self.error("expected a digit after the decimal point"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            integer = false;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("expected a digit in the exponent"));
            }
        }
        let text = &self.text[start..self.pos];
        if integer {
            if negative {
                if let Ok(i) = text.parse::<i64>() {
                    if i < 0 {
                        return Ok(Value::Number(Number::NegInt(i)));
                    }
                }
            } else if let Ok(u) = text.parse::<u64>() {
                return Ok(Value::Number(Number::PosInt(u)));
            }
        }
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Value::Number(Number::Float(x))),
            _ => Err(syntax_at(start, format!("number {text} out of range"))),
        }
    }
}

/// Refuses an object whose keys are not distinct, naming the key whose second occurrence
/// comes first.
fn check_distinct(
    members: &[(String, Value)],
    key_offsets: &[usize],
    depth: usize,
    parent: Option<&str>,
) -> Result<(), ParseError> {
    let mut order: Vec<usize> = (0..members.len()).collect();
    // Stable: equal keys stay in input order.
    order.sort_by(|&a, &b| members[a].0.cmp(&members[b].0));
    let second = order
        .windows(2)
        .filter(|w| members[w[0]].0 == members[w[1]].0)
        .map(|w| w[1])
        .min();
    match second {
        None => Ok(()),
        Some(i) => Err(ParseError {
            offset: key_offsets[i],
            kind: ErrorKind::DuplicateKey {
                key: members[i].0.clone(),
                depth,
                parent: parent.map(str::to_string),
            },
        }),
    }
}

/// A byte for an error message.
fn describe(c: u8) -> String {
    if c.is_ascii_graphic() {
        format!("`{}`", c as char)
    } else {
        format!("byte 0x{c:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Value {
        parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn refused(text: &[u8], what: &str) -> ParseError {
        match parse(text) {
            Ok(v) => panic!("{:?} parsed as {v:?}", String::from_utf8_lossy(text)),
            Err(e) => {
                assert!(
                    e.to_string().contains(what),
                    "{:?}: `{e}` does not say `{what}`",
                    String::from_utf8_lossy(text)
                );
                e
            }
        }
    }

    fn num(v: Value) -> Number {
        match v {
            Value::Number(n) => n,
            other => panic!("{other:?} is not a number"),
        }
    }

    #[test]
    fn values_parse() {
        assert_eq!(ok(" null "), Value::Null);
        assert_eq!(ok("true"), Value::Bool(true));
        assert_eq!(ok("false"), Value::Bool(false));
        assert_eq!(ok("[]"), Value::Array(vec![]));
        assert_eq!(ok("{}"), Value::Object(vec![]));
        let v = ok("{\"b\": [1, \"x\", {\"c\": null}], \"a\": -2.5}\r\n\t");
        assert_eq!(v.get("a"), Some(&Value::Number(Number::Float(-2.5))));
        let b = v.get("b").unwrap().as_array().unwrap();
        assert_eq!(b[0].as_u64(), Some(1));
        assert_eq!(b[1].as_str(), Some("x"));
        assert_eq!(b[2].get("c"), Some(&Value::Null));
        // Members keep their order.
        let keys: Vec<&str> = v.as_object().unwrap().iter().map(|(k, _)| &k[..]).collect();
        assert_eq!(keys, ["b", "a"]);
    }

    #[test]
    fn strings_unescape() {
        assert_eq!(
            ok(r#""a\"b\\c\/d\b\f\n\r\t\u00e9\u20AC\ud83d\ude00 é€😀""#).as_str(),
            Some("a\"b\\c/d\u{8}\u{c}\n\r\té€😀 é€😀")
        );
        assert_eq!(ok(r#""\u0000""#).as_str(), Some("\0"));
        assert_eq!(ok(r#""""#).as_str(), Some(""));
    }

    #[test]
    fn numbers_parse_as_integers_when_they_are() {
        assert_eq!(num(ok("0")), Number::PosInt(0));
        assert_eq!(num(ok("18446744073709551615")), Number::PosInt(u64::MAX));
        assert_eq!(
            num(ok("18446744073709551616")),
            Number::Float(18446744073709551616.0)
        );
        assert_eq!(num(ok("-1")), Number::NegInt(-1));
        assert_eq!(num(ok("-9223372036854775808")), Number::NegInt(i64::MIN));
        assert_eq!(
            num(ok("-9223372036854775809")),
            Number::Float(-9223372036854775809.0)
        );
        // -0 is the float -0.0 (as serde_json).
        assert!(matches!(num(ok("-0")), Number::Float(x) if x == 0.0 && x.is_sign_negative()));
        assert_eq!(num(ok("2.0")), Number::Float(2.0));
        assert_eq!(ok("2.0").as_u64(), None);
        assert_eq!(num(ok("1e3")), Number::Float(1000.0));
        assert_eq!(num(ok("1E+3")), Number::Float(1000.0));
        assert_eq!(num(ok("-1.5e-3")), Number::Float(-0.0015));
        assert_eq!(num(ok("0.1")), Number::Float(0.1));
        assert_eq!(num(ok("4.9e-324")), Number::Float(5e-324));
        assert_eq!(num(ok("1e-400")), Number::Float(0.0));
    }

    #[test]
    fn malformed_text_is_refused_with_its_offset() {
        let e = refused(b"[1,]", "expected a value");
        assert_eq!(e.offset, 3);
        refused(b"{\"a\":1,}", "expected a string key");
        refused(b"[1 2]", "expected `,` or `]`");
        refused(b"{\"a\" 1}", "expected `:`");
        refused(b"{\"a\":1 \"b\":2}", "expected `,` or `}`");
        refused(b"{1:2}", "expected a string key");
        refused(b"", "unexpected end of input");
        refused(b"   ", "unexpected end of input");
        refused(b"[", "unexpected end of input");
        refused(b"{", "expected a string key");
        refused(b"{\"a\":", "unexpected end of input");
        refused(b"\"abc", "unterminated string");
        refused(b"\"abc\\", "unterminated string");
        refused(b"// c\n1", "unexpected `/`");
        refused(b"[1] /* c */", "trailing characters");
        let e = refused(b"{} {}", "trailing characters");
        assert_eq!(e.offset, 3);
        refused(b"1 x", "trailing characters after the JSON value at byte 2");
        refused(b"tru", "expected `true`");
        refused(b"nul", "expected `null`");
        refused(b"True", "unexpected `T`");
        refused(b"'a'", "unexpected `'`");
        refused(b"\xef\xbb\xbf{}", "unexpected byte 0xef");
    }

    #[test]
    fn malformed_numbers_are_refused() {
        let e = refused(b"[01]", "leading zero");
        assert_eq!(e.offset, 1);
        refused(b"-01", "leading zero");
        refused(b"00", "leading zero");
        refused(b"NaN", "unexpected `N`");
        refused(b"[Infinity]", "unexpected `I`");
        refused(b"-Infinity", "expected a digit");
        refused(b"+1", "unexpected `+`");
        refused(b".5", "unexpected `.`");
        refused(b"1.", "after the decimal point");
        refused(b"1.e3", "after the decimal point");
        refused(b"1e", "in the exponent");
        refused(b"1e+", "in the exponent");
        refused(b"-", "expected a digit");
        refused(b"0x10", "trailing characters");
        refused(b"1e400", "out of range");
        refused(b"-1e400", "out of range");
    }

    #[test]
    fn bad_strings_are_refused() {
        refused(b"\"a\\x\"", "invalid escape `\\`x``");
        refused(b"\"\\u12\"", "four hex digits");
        refused(b"\"\\u12g4\"", "four hex digits");
        refused(b"\"\\U0041\"", "invalid escape");
        let e = refused(b"\"ab\\ud800\"", "lone surrogate \\uD800");
        assert_eq!(e.offset, 3);
        refused(b"\"\\ud800x\"", "lone surrogate");
        refused(b"\"\\ud800\\n\"", "lone surrogate");
        refused(b"\"\\ud800\\u0041\"", "not a low surrogate");
        refused(b"\"\\ud800\\ud800\"", "not a low surrogate");
        refused(b"\"\\udc00\"", "lone surrogate \\uDC00");
        refused(b"\"\\udfff\\ud800\"", "lone surrogate");
        let e = refused(b"\"a\nb\"", "control character 0x0a");
        assert_eq!(e.offset, 2);
        refused(b"\"\t\"", "control character 0x09");
        refused(b"\"\x00\"", "control character 0x00");
        refused(b"\"\x1f\"", "control character 0x1f");
        let e = refused(b"\"ab\xff\"", "invalid UTF-8");
        assert_eq!(e.offset, 3);
        refused(b"\"\xed\xa0\x80\"", "invalid UTF-8"); // a surrogate in UTF-8
        refused(b"\"\xc3\"", "invalid UTF-8");
        // DEL and U+2028 need no escape.
        assert_eq!(ok("\"\u{7f}\u{2028}\"").as_str(), Some("\u{7f}\u{2028}"));
    }

    #[test]
    fn duplicate_keys_are_refused_by_name() {
        let e = refused(b"{\"a\":1,\"b\":2,\"a\":3}", "key `a` appears twice");
        assert_eq!(e.offset, 13);
        assert_eq!(
            e.kind,
            ErrorKind::DuplicateKey {
                key: "a".into(),
                depth: 1,
                parent: None
            }
        );
        // Spelled with an escape.
        refused(b"{\"C\":1,\"\\u0043\":2}", "key `C` appears twice");
        // The duplicate whose second occurrence comes first is named.
        let e = refused(
            b"{\"x\":1,\"y\":1,\"y\":2,\"x\":2}",
            "key `y` appears twice (at byte 13)",
        );
        assert_eq!(e.offset, 13);
        // Nested objects name the member holding them.
        let e = refused(
            b"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}",
            "key `k` of `__metadata__` appears twice",
        );
        assert_eq!(
            e.kind,
            ErrorKind::DuplicateKey {
                key: "k".into(),
                depth: 2,
                parent: Some("__metadata__".into())
            }
        );
        refused(b"[{\"k\":1,\"k\":1}]", "key `k` appears twice");
        // The same key in different objects is fine.
        ok("{\"a\":{\"a\":1},\"b\":{\"a\":2}}");
    }

    #[test]
    fn nesting_is_limited() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        ok(&deep(MAX_DEPTH));
        let e = refused(deep(MAX_DEPTH + 1).as_bytes(), "nested deeper than 128");
        assert_eq!(e.offset, MAX_DEPTH);
        let objects = |n: usize| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
        ok(&objects(MAX_DEPTH));
        refused(objects(MAX_DEPTH + 1).as_bytes(), "nested deeper");
        // Far deeper input neither overflows the stack nor takes long.
        refused("[".repeat(10_000_000).as_bytes(), "nested deeper");
    }

    #[test]
    fn any_bytes_give_a_value_or_an_error() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(5);
        let alphabet = b"{}[]:,\"\\u0123456789abcdefABCDEF.eE+-ntrlsx \n\xc3\xa9\xff";
        for _ in 0..20_000 {
            let len = rng.gen_range(0..24);
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            if let Ok(v) = parse(&bytes) {
                // What parses writes back to text that parses to the same value.
                assert_eq!(parse(v.to_compact().as_bytes()), Ok(v.clone()));
                assert_eq!(parse(v.to_pretty().as_bytes()), Ok(v));
            }
        }
    }

    #[test]
    fn values_round_trip() {
        let text = r#"{"s":"a\"\\\n\u0001é😀","n":[0,-1,18446744073709551615,-9223372036854775808,0.5,-1e-7,1.5e+300],"o":{"e":{},"a":[]},"t":true,"f":false,"z":null}"#;
        let v = ok(text);
        assert_eq!(v.to_compact(), text);
        assert_eq!(ok(&v.to_pretty()), v);
    }

    /// The writer against serde_json (a dev-dependency) on the same values.
    fn serde(v: &Value) -> serde_json::Value {
        match v {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Number(Number::PosInt(u)) => (*u).into(),
            Value::Number(Number::NegInt(i)) => (*i).into(),
            Value::Number(Number::Float(x)) => (*x).into(),
            Value::String(s) => s.clone().into(),
            Value::Array(a) => serde_json::Value::Array(a.iter().map(serde).collect()),
            Value::Object(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), serde(v))).collect())
            }
        }
    }

    #[test]
    fn output_is_serde_jsons() {
        let control: String = (0u8..0x20).map(char::from).collect();
        let v = Value::sorted_object(vec![
            (
                "strings".into(),
                Value::from(format!("{control}\"\\/\u{7f}é\u{2028}😀")),
            ),
            (
                "numbers".into(),
                Value::Array(vec![
                    Value::from(0u64),
                    Value::from(u64::MAX),
                    Value::from(i64::MIN),
                    Value::from(-3i64),
                    Value::from(0.1f32),
                    Value::from(f64::NAN),
                ]),
            ),
            ("empty".into(), Value::Object(vec![])),
            ("none".into(), Value::Array(vec![])),
            (
                "nested".into(),
                Value::Array(vec![
                    Value::Array(vec![Value::Null, Value::Bool(true)]),
                    Value::sorted_object(vec![
                        ("z".into(), Value::Array(vec![])),
                        ("a".into(), Value::from("x")),
                    ]),
                ]),
            ),
        ]);
        let s = serde(&v);
        assert_eq!(v.to_compact(), serde_json::to_string(&s).unwrap());
        assert_eq!(v.to_pretty(), serde_json::to_string_pretty(&s).unwrap());
        assert_eq!(v.to_string(), s.to_string());
    }

    #[test]
    fn floats_are_written_as_serde_json_writes_them() {
        use rand::{Rng, SeedableRng};
        let same = |x: f64| {
            let mut ours = String::new();
            write_f64(&mut ours, x);
            assert_eq!(ours, serde_json::to_string(&x).unwrap(), "{x:e}");
            // And it reads back as the same float.
            assert_eq!(num(ok(&ours)), Number::Float(x), "{ours}");
        };
        for x in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            0.3,
            1e-5,
            1e-6,
            1.5e-7,
            123456.0,
            1e15,
            1e16,
            1.2345e20,
            1e21,
            1e100,
            5e-324,
            2.2250738585072014e-308,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            2.0 / 3.0,
            1234567890123456789.0,
            9007199254740993.0,
        ] {
            same(x);
        }
        for e in -1074..1024 {
            same(2f64.powi(e));
        }
        let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(7);
        for _ in 0..200_000 {
            let x = f64::from_bits(rng.gen());
            if x.is_finite() {
                same(x);
            }
            // Values of moderate size, where fixed and exponent forms meet.
            same(rng.gen_range(-1e17..1e17) * 10f64.powi(rng.gen_range(-8..0)));
            // f32 values, written widened (as serde_json's `Value` does).
            same(f32::from_bits(rng.gen::<u32>() & 0x7f7f_ffff) as f64);
        }
    }
}
