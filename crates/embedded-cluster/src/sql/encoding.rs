//! Row encodings: order-preserving key encoding of index columns, and the
//! compact, versioned value encoding of a row.
//!
//! **Keys.** Each column is a tag byte then its bytes, chosen so byte order
//! is value order: `0x00` NULL; `0x02` + the 64-bit integer with its sign bit
//! flipped, big-endian; `0x03` + the double's order-preserving bits; `0x04` +
//! 0/1 for bools; `0x05` + the string/bytes with each `0x00` escaped as
//! `0x00 0xFF`, ended by `0x00 0x01`.
//!
//! **Values.** Version byte [`ROW_VERSION`], then per column (in column
//! order) a tag byte and its data: integers zig-zag varints, doubles 8 bytes,
//! text and bytes a varint length then the bytes.

use super::value::Value;

/// Version byte of the row value encoding.
pub const ROW_VERSION: u8 = 1;

/// Appends the order-preserving key encoding of `v`.
pub fn encode_key_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(0x00),
        Value::Int(i) => {
            out.push(0x02);
            out.extend_from_slice(&((*i as u64) ^ (1 << 63)).to_be_bytes());
        }
        Value::Float(f) => {
            out.push(0x03);
            let bits = f.to_bits();
            let ordered = if bits >> 63 == 1 {
                !bits
            } else {
                bits | (1 << 63)
            };
            out.extend_from_slice(&ordered.to_be_bytes());
        }
        Value::Bool(b) => {
            out.push(0x04);
            out.push(u8::from(*b));
        }
        Value::String(s) | Value::Decimal(s) => push_escaped_bytes(out, s.as_bytes()),
        Value::Bytes(b) => push_escaped_bytes(out, b),
    }
}

fn push_escaped_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.push(0x05);
    for &x in b {
        out.push(x);
        if x == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// The key encoding of several values, concatenated.
pub fn encode_key(values: &[&Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 * values.len());
    for v in values {
        encode_key_value(&mut out, v);
    }
    out
}

/// Encodes a row's values (in column order).
pub fn encode_row(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + values.len() * 9);
    encode_row_into(&mut out, values);
    out
}

/// Appends the encoding of a row's values to `out`.
pub fn encode_row_into(out: &mut Vec<u8>, values: &[Value]) {
    out.push(ROW_VERSION);
    for v in values {
        match v {
            Value::Null => out.push(0),
            Value::Int(i) => {
                out.push(1);
                put_varint(out, ((*i << 1) ^ (*i >> 63)) as u64);
            }
            Value::Float(f) => {
                out.push(2);
                out.extend_from_slice(&f.to_le_bytes());
            }
            Value::Bool(b) => out.push(if *b { 4 } else { 3 }),
            Value::String(s) => {
                out.push(5);
                put_varint(out, s.len() as u64);
                out.extend_from_slice(s.as_bytes());
            }
            Value::Bytes(b) => {
                out.push(6);
                put_varint(out, b.len() as u64);
                out.extend_from_slice(b);
            }
            Value::Decimal(s) => {
                out.push(7);
                put_varint(out, s.len() as u64);
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
}

/// Decodes a row of `columns` values; `None` if the bytes are malformed.
pub fn decode_row(mut b: &[u8], columns: usize) -> Option<Vec<Value>> {
    let (&version, rest) = b.split_first()?;
    if version != ROW_VERSION {
        return None;
    }
    b = rest;
    let mut out = Vec::with_capacity(columns);
    while !b.is_empty() {
        let (&tag, rest) = b.split_first()?;
        b = rest;
        let v = match tag {
            0 => Value::Null,
            1 => {
                let u = get_varint(&mut b)?;
                Value::Int(((u >> 1) as i64) ^ -((u & 1) as i64))
            }
            2 => {
                let raw: [u8; 8] = b.get(..8)?.try_into().ok()?;
                b = &b[8..];
                Value::Float(f64::from_le_bytes(raw))
            }
            3 => Value::Bool(false),
            4 => Value::Bool(true),
            5..=7 => {
                let len = usize::try_from(get_varint(&mut b)?).ok()?;
                let bytes = b.get(..len)?.to_vec();
                b = &b[len..];
                match tag {
                    5 => Value::String(String::from_utf8(bytes).ok()?),
                    6 => Value::Bytes(bytes),
                    _ => Value::Decimal(String::from_utf8(bytes).ok()?),
                }
            }
            _ => return None,
        };
        out.push(v);
    }
    // Columns added after the row was written read as NULL.
    while out.len() < columns {
        out.push(Value::Null);
    }
    Some(out)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&x, rest) = b.split_first()?;
        *b = rest;
        v |= u64::from(x & 0x7F) << shift;
        if x & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn key_order_is_value_order(a in any::<i64>(), b in any::<i64>(), s in ".{0,8}", t in ".{0,8}") {
            let (ka, kb) = (encode_key(&[&Value::Int(a)]), encode_key(&[&Value::Int(b)]));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            let (ks, kt) = (encode_key(&[&Value::String(s.clone())]), encode_key(&[&Value::String(t.clone())]));
            prop_assert_eq!(ks.cmp(&kt), s.cmp(&t));
        }

        #[test]
        fn rows_round_trip(i in any::<i64>(), f in any::<f64>(), s in ".{0,20}", b in proptest::collection::vec(any::<u8>(), 0..20)) {
            let row = vec![Value::Int(i), Value::Float(f), Value::String(s), Value::Bytes(b), Value::Null, Value::Bool(true)];
            let decoded = decode_row(&encode_row(&row), row.len()).unwrap();
            prop_assert_eq!(decoded.len(), row.len());
            for (x, y) in decoded.iter().zip(&row) {
                match (x, y) {
                    (Value::Float(p), Value::Float(q)) => prop_assert_eq!(p.to_bits(), q.to_bits()),
                    _ => prop_assert_eq!(x, y),
                }
            }
        }
    }

    #[test]
    fn malformed_rows_are_none() {
        assert_eq!(decode_row(&[], 1), None);
        assert_eq!(decode_row(&[9], 1), None);
        assert_eq!(decode_row(&[ROW_VERSION, 5, 10, b'a'], 1), None);
    }
}
