//! PAX extended header records (`x`): `"<length> <key>=<value>\n"`, the length counting
//! the whole record. Only the keys tank uses are kept; the others are checked for syntax
//! and dropped.

use crate::{MAX_PAX_KEY, MAX_PAX_RECORDS};

/// What a PAX header says about the entry that follows it.
#[derive(Default)]
pub(crate) struct Pax {
    pub(crate) path: Option<Vec<u8>>,
    pub(crate) linkpath: Option<Vec<u8>>,
    pub(crate) size: Option<u64>,
    pub(crate) uid: Option<u64>,
    pub(crate) gid: Option<u64>,
    pub(crate) mtime: Option<(i64, u32)>,
    /// `SCHILY.xattr.<name>` records: name and value.
    pub(crate) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) sparse: SparseKeys,
}

/// The `GNU.sparse.*` records.
#[derive(Default)]
pub(crate) struct SparseKeys {
    pub(crate) major: Option<u64>,
    pub(crate) minor: Option<u64>,
    /// The real name of the file (0.1 and 1.0 store a made-up one in the header).
    pub(crate) name: Option<Vec<u8>>,
    /// `GNU.sparse.realsize` (1.0) or `GNU.sparse.size` (0.x).
    pub(crate) real_size: Option<u64>,
    /// `GNU.sparse.map` (0.1): offset,size,offset,size,...
    pub(crate) map: Option<Vec<u8>>,
    /// Repeated `GNU.sparse.offset` / `GNU.sparse.numbytes` (0.0), in order.
    pub(crate) pairs: Vec<(u64, u64)>,
    pending_offset: Option<u64>,
    /// Whether any `GNU.sparse.*` key was seen.
    pub(crate) any: bool,
}

/// Why a PAX header could not be used: a malformed record, or a count limit.
pub(crate) enum PaxError {
    Malformed(String),
    Limit { limit: &'static str, max: u64 },
}

fn malformed(index: usize, what: &str) -> PaxError {
    PaxError::Malformed(format!("PAX record {index}: {what}"))
}

/// A non-negative decimal number, as PAX writes sizes and ids.
pub(crate) fn decimal(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 20 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0_u64, |acc, digit| {
        acc.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })
}

/// `[-]seconds[.fraction]`, as PAX writes times.
fn timestamp(value: &[u8]) -> Option<(i64, u32)> {
    let (negative, value) = match value.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (seconds, fraction) = match value.iter().position(|byte| *byte == b'.') {
        Some(dot) => (&value[..dot], &value[dot + 1..]),
        None => (value, &b""[..]),
    };
    let seconds = i64::try_from(decimal(seconds)?).ok()?;
    if !fraction.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut nanos: u32 = 0;
    for position in 0..9 {
        let digit = fraction
            .get(position)
            .map_or(0, |digit| u32::from(digit - b'0'));
        nanos = nanos * 10 + digit;
    }
    if !negative {
        return Some((seconds, nanos));
    }
    // -1.25 is 2 seconds back plus 0.75.
    if nanos == 0 {
        Some((seconds.checked_neg()?, 0))
    } else {
        Some((
            seconds.checked_neg()?.checked_sub(1)?,
            1_000_000_000 - nanos,
        ))
    }
}

/// Parses the records of one `x` header, whose data is `data`.
pub(crate) fn parse(data: &[u8]) -> Result<Pax, PaxError> {
    let mut pax = Pax::default();
    let mut rest = data;
    let mut index = 0_usize;
    while !rest.is_empty() {
        index += 1;
        if index > MAX_PAX_RECORDS {
            return Err(PaxError::Limit {
                limit: "MAX_PAX_RECORDS",
                max: MAX_PAX_RECORDS as u64,
            });
        }
        let space = rest
            .iter()
            .take(21)
            .position(|byte| *byte == b' ')
            .ok_or_else(|| malformed(index, "no length field"))?;
        let length = decimal(&rest[..space])
            .and_then(|length| usize::try_from(length).ok())
            .ok_or_else(|| malformed(index, "the length is not a number"))?;
        if length <= space + 1 || length > rest.len() {
            return Err(malformed(
                index,
                &format!("length {length} does not fit the header"),
            ));
        }
        let record = &rest[space + 1..length];
        rest = &rest[length..];
        let Some(body) = record.strip_suffix(b"\n") else {
            return Err(malformed(index, "does not end with a newline"));
        };
        let equals = body
            .iter()
            .position(|byte| *byte == b'=')
            .ok_or_else(|| malformed(index, "has no '='"))?;
        let (key, value) = (&body[..equals], &body[equals + 1..]);
        if key.is_empty() {
            return Err(malformed(index, "has an empty key"));
        }
        if key.len() > MAX_PAX_KEY {
            return Err(PaxError::Limit {
                limit: "MAX_PAX_KEY",
                max: MAX_PAX_KEY as u64,
            });
        }
        pax.record(key, value)
            .map_err(|what| malformed(index, &format!("{}: {what}", crate::printable(key))))?;
    }
    if pax.sparse.pending_offset.is_some() {
        return Err(malformed(
            index,
            "GNU.sparse.offset without GNU.sparse.numbytes",
        ));
    }
    Ok(pax)
}

impl Pax {
    fn record(&mut self, key: &[u8], value: &[u8]) -> Result<(), &'static str> {
        let number = || decimal(value).ok_or("not a decimal number");
        match key {
            b"path" => self.path = Some(value.to_vec()),
            b"linkpath" => self.linkpath = Some(value.to_vec()),
            b"size" => self.size = Some(number()?),
            // Unparseable ids and times are ignored, as in the ustar fields.
            b"uid" => self.uid = decimal(value),
            b"gid" => self.gid = decimal(value),
            b"mtime" => self.mtime = timestamp(value),
            _ => {
                if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    self.xattrs.push((name.to_vec(), value.to_vec()));
                } else if let Some(sparse_key) = key.strip_prefix(b"GNU.sparse.") {
                    self.sparse.any = true;
                    self.sparse_record(sparse_key, value)?;
                }
            }
        }
        Ok(())
    }

    fn sparse_record(&mut self, key: &[u8], value: &[u8]) -> Result<(), &'static str> {
        let number = || decimal(value).ok_or("not a decimal number");
        let sparse = &mut self.sparse;
        match key {
            b"major" => sparse.major = Some(number()?),
            b"minor" => sparse.minor = Some(number()?),
            b"name" => sparse.name = Some(value.to_vec()),
            b"realsize" | b"size" => sparse.real_size = Some(number()?),
            b"map" => sparse.map = Some(value.to_vec()),
            b"offset" if sparse.pending_offset.is_some() => return Err("two offsets in a row"),
            b"offset" => sparse.pending_offset = Some(number()?),
            b"numbytes" => {
                let offset = sparse
                    .pending_offset
                    .take()
                    .ok_or("numbytes without offset")?;
                if sparse.pairs.len() >= crate::MAX_SPARSE_SEGMENTS {
                    return Err("more segments than MAX_SPARSE_SEGMENTS allows");
                }
                sparse.pairs.push((offset, number()?));
            }
            // numblocks is implied by the map itself.
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_times() {
        let pax = parse(b"18 path=some/name\n15 mtime=-1.25\n15 size=123456\n")
            .unwrap_or_else(|_| panic!("valid records"));
        assert_eq!(pax.path.as_deref(), Some(&b"some/name"[..]));
        assert_eq!(pax.mtime, Some((-2, 750_000_000)));
        assert_eq!(pax.size, Some(123_456));
        assert_eq!(
            timestamp(b"1700000000.5"),
            Some((1_700_000_000, 500_000_000))
        );
        assert!(parse(b"5 a=\n").is_ok());
        for bad in [&b"99 path=x\n"[..], b"x path=y\n", b"9 path\n  "] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse(b"6 =ab\n").is_err());
    }
}
