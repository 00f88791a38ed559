//! One 512-byte tar header block: checksum, numeric fields (octal and base-256), names.

/// Size of a tar block.
pub(crate) const BLOCK: usize = 512;

/// A header block, as read.
pub(crate) type Block = [u8; BLOCK];

const CHECKSUM: std::ops::Range<usize> = 148..156;

/// Whether the block is all zeros (part of the end-of-archive marker).
pub(crate) fn is_zero(block: &Block) -> bool {
    block.iter().all(|byte| *byte == 0)
}

/// Checks the header checksum: the sum of all bytes with the checksum field read as spaces,
/// as unsigned bytes (POSIX) or, as some old tars computed it, signed ones.
pub(crate) fn checksum_ok(block: &Block) -> bool {
    let Ok(stored) = parse_octal(&block[CHECKSUM]) else {
        return false;
    };
    let mut unsigned: i64 = 0;
    let mut signed: i64 = 0;
    for (index, byte) in block.iter().enumerate() {
        let byte = if CHECKSUM.contains(&index) {
            b' '
        } else {
            *byte
        };
        unsigned += i64::from(byte);
        signed += i64::from(byte as i8);
    }
    i64::try_from(stored).is_ok_and(|stored| stored == unsigned || stored == signed)
}

/// The bytes of a NUL-terminated field, up to the first NUL.
pub(crate) fn c_str(field: &[u8]) -> &[u8] {
    match field.iter().position(|byte| *byte == 0) {
        Some(end) => &field[..end],
        None => field,
    }
}

/// Parses an octal field (leading and trailing spaces and NULs allowed; empty is 0).
fn parse_octal(field: &[u8]) -> Result<u64, &'static str> {
    let trimmed = trim(field);
    let mut value: u64 = 0;
    for byte in trimmed {
        if !(b'0'..=b'7').contains(byte) {
            return Err("not an octal number");
        }
        value = value
            .checked_mul(8)
            .and_then(|value| value.checked_add(u64::from(byte - b'0')))
            .ok_or("octal number out of range")?;
    }
    Ok(value)
}

fn trim(field: &[u8]) -> &[u8] {
    let blank = |byte: &u8| *byte == b' ' || *byte == 0;
    let start = field
        .iter()
        .position(|byte| !blank(byte))
        .unwrap_or(field.len());
    let end = field
        .iter()
        .rposition(|byte| !blank(byte))
        .map_or(start, |end| end + 1);
    &field[start..end.max(start)]
}

/// Parses a numeric field: octal, or base-256 (GNU and star) when the first byte has its
/// high bit set. Negative base-256 values are refused (only mtime may be negative, see
/// [`parse_signed`]).
pub(crate) fn parse_number(field: &[u8]) -> Result<u64, &'static str> {
    let Some(first) = field.first() else {
        return Ok(0);
    };
    if first & 0x80 == 0 {
        return parse_octal(field);
    }
    if first & 0x40 != 0 {
        return Err("negative number");
    }
    let mut value: u64 = u64::from(first & 0x7f);
    for byte in &field[1..] {
        value = value
            .checked_mul(256)
            .map(|value| value | u64::from(*byte))
            .ok_or("base-256 number out of range")?;
    }
    Ok(value)
}

/// Parses a numeric field that may be negative (base-256 with the sign bit), as an i64.
pub(crate) fn parse_signed(field: &[u8]) -> Result<i64, &'static str> {
    let Some(first) = field.first() else {
        return Ok(0);
    };
    if first & 0x80 == 0 {
        let value = parse_octal(field)?;
        return i64::try_from(value).map_err(|_| "number out of range");
    }
    // Base-256: big-endian two's complement, the first byte's top bit is the marker and
    // 0xff as the first byte means negative.
    let negative = *first == 0xff;
    let filler: u8 = if negative { 0xff } else { 0 };
    let mut bytes = field.to_vec();
    bytes[0] = if negative { 0xff } else { first & 0x7f };
    // Leading filler bytes beyond the 8 an i64 holds must be pure sign extension.
    let excess = bytes.len().saturating_sub(8);
    if bytes[..excess].iter().any(|byte| *byte != filler) {
        return Err("base-256 number out of range");
    }
    let mut value: i64 = if negative { -1 } else { 0 };
    for byte in &bytes[excess..] {
        value = value
            .checked_mul(256)
            .ok_or("base-256 number out of range")?;
        value |= i64::from(*byte);
    }
    if (value < 0) != negative {
        return Err("base-256 number out of range");
    }
    Ok(value)
}

/// An owner id; a negative (base-256) one reads as `u64::MAX`, which no owner can be, so
/// applying it fails instead of the id being ignored.
fn parse_id(field: &[u8]) -> Option<u64> {
    match parse_number(field) {
        Ok(id) => Some(id),
        Err("negative number") => Some(u64::MAX),
        Err(_) => None,
    }
}

/// The fields of a header that the reader uses, before PAX and GNU overrides.
pub(crate) struct Fields {
    pub(crate) typeflag: u8,
    pub(crate) name: Vec<u8>,
    pub(crate) link: Vec<u8>,
    pub(crate) mode: Option<u32>,
    pub(crate) uid: Option<u64>,
    pub(crate) gid: Option<u64>,
    pub(crate) mtime: Option<i64>,
    pub(crate) size: Result<u64, &'static str>,
    pub(crate) dev_major: Option<u64>,
    pub(crate) dev_minor: Option<u64>,
}

/// Reads the fields of a v7, ustar, star or GNU header.
pub(crate) fn fields(block: &Block) -> Fields {
    let magic = &block[257..265];
    let gnu = magic == b"ustar  \0";
    let ustar = &magic[..6] == b"ustar\0";
    let mut name = c_str(&block[0..100]).to_vec();
    if ustar {
        // star puts atime and ctime at the end of the prefix field and "tar\0" at 508.
        let prefix_end = if &block[508..512] == b"tar\0" {
            476
        } else {
            500
        };
        let prefix = c_str(&block[345..prefix_end]);
        if !prefix.is_empty() {
            let mut joined = prefix.to_vec();
            joined.push(b'/');
            joined.extend_from_slice(&name);
            name = joined;
        }
    }
    let (dev_major, dev_minor) = if ustar || gnu {
        (
            parse_number(&block[329..337]).ok(),
            parse_number(&block[337..345]).ok(),
        )
    } else {
        (None, None)
    };
    Fields {
        typeflag: block[156],
        name,
        link: c_str(&block[157..257]).to_vec(),
        mode: parse_number(&block[100..108])
            .ok()
            .and_then(|mode| u32::try_from(mode).ok()),
        uid: parse_id(&block[108..116]),
        gid: parse_id(&block[116..124]),
        mtime: parse_signed(&block[136..148]).ok(),
        size: parse_number(&block[124..136]),
        dev_major,
        dev_minor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number(b"0000644\0"), Ok(0o644));
        assert_eq!(parse_number(b"  644 \0"), Ok(0o644));
        assert_eq!(parse_number(b"\0\0\0\0"), Ok(0));
        assert!(parse_number(b"0009").is_err());
        assert!(parse_number(b"77777777777777777777777").is_err());
        let mut big = [0_u8; 12];
        big[0] = 0x80;
        big[4..].copy_from_slice(&(1_u64 << 40).to_be_bytes());
        assert_eq!(parse_number(&big), Ok(1 << 40));
        let mut huge = [0xff_u8; 12];
        huge[0] = 0x80;
        assert!(parse_number(&huge).is_err(), "2^88-1 does not fit");
        let negative = [0xff_u8; 12];
        assert_eq!(parse_signed(&negative), Ok(-1));
        assert!(parse_number(&negative).is_err());
        let mut max = [0_u8; 12];
        max[0] = 0x80;
        max[4..].copy_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(parse_number(&max), Ok(u64::MAX));
    }
}
