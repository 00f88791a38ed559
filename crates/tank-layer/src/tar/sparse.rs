//! GNU sparse maps: old-GNU headers (type `S`, with extension blocks), PAX 0.1's
//! `GNU.sparse.map`, PAX 1.0's map at the start of the data, and their validation.

use super::header::{Block, parse_number};
use crate::MAX_SPARSE_SEGMENTS;

/// A sparse file: its real (expanded) size and the `(offset, length)` data segments, in
/// order, whose bytes follow one after the other in the archive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SparseMap {
    pub(crate) real_size: u64,
    pub(crate) segments: Vec<(u64, u64)>,
}

/// Reads `count` 24-byte `(offset, numbytes)` slots starting at `start`; an unused slot
/// (its offset field starts with NUL) ends the list.
fn slots(
    block: &Block,
    start: usize,
    count: usize,
    segments: &mut Vec<(u64, u64)>,
) -> Result<(), String> {
    for slot in 0..count {
        let at = start + slot * 24;
        let offset_field = &block[at..at + 12];
        if offset_field[0] == 0 {
            break;
        }
        let offset =
            parse_number(offset_field).map_err(|what| format!("segment offset: {what}"))?;
        let length = parse_number(&block[at + 12..at + 24])
            .map_err(|what| format!("segment length: {what}"))?;
        if segments.len() >= MAX_SPARSE_SEGMENTS {
            return Err(format!(
                "more than MAX_SPARSE_SEGMENTS ({MAX_SPARSE_SEGMENTS}) segments"
            ));
        }
        segments.push((offset, length));
    }
    Ok(())
}

/// The map in an old-GNU `S` header (the first segments and the real size), and whether
/// extension blocks follow.
pub(crate) fn old_gnu_header(block: &Block) -> Result<(SparseMap, bool), String> {
    let mut segments = Vec::new();
    slots(block, 386, 4, &mut segments)?;
    let real_size =
        parse_number(&block[483..495]).map_err(|what| format!("real size field: {what}"))?;
    Ok((
        SparseMap {
            real_size,
            segments,
        },
        block[482] != 0,
    ))
}

/// One old-GNU sparse extension block (21 slots); whether another one follows.
pub(crate) fn old_gnu_extension(
    block: &Block,
    segments: &mut Vec<(u64, u64)>,
) -> Result<bool, String> {
    slots(block, 0, 21, segments)?;
    Ok(block[504] != 0)
}

/// PAX 0.1's `GNU.sparse.map`: `offset,length,offset,length,...`.
pub(crate) fn parse_map_text(text: &[u8]) -> Result<Vec<(u64, u64)>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let mut numbers = text.split(|byte| *byte == b',');
    let mut segments = Vec::new();
    while let Some(offset) = numbers.next() {
        let length = numbers
            .next()
            .ok_or("GNU.sparse.map has an odd number of values")?;
        let number = |field: &[u8]| {
            super::pax::decimal(field).ok_or_else(|| {
                format!(
                    "GNU.sparse.map value {} is not a number",
                    crate::printable(field)
                )
            })
        };
        if segments.len() >= MAX_SPARSE_SEGMENTS {
            return Err(format!(
                "more than MAX_SPARSE_SEGMENTS ({MAX_SPARSE_SEGMENTS}) segments"
            ));
        }
        segments.push((number(offset)?, number(length)?));
    }
    Ok(segments)
}

/// Incremental parser of PAX 1.0's map: decimal numbers, one per line, the first being
/// the number of segments.
#[derive(Default)]
pub(crate) struct MapParser {
    count: Option<u64>,
    digits: u32,
    current: u64,
    offset: Option<u64>,
    pub(crate) segments: Vec<(u64, u64)>,
}

impl MapParser {
    /// Feeds bytes; `Ok(true)` once the map is complete (the rest of its block is padding).
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Result<bool, String> {
        for byte in bytes {
            if self.done() {
                return Ok(true);
            }
            match byte {
                b'0'..=b'9' => {
                    self.digits += 1;
                    self.current = self
                        .current
                        .checked_mul(10)
                        .and_then(|value| value.checked_add(u64::from(byte - b'0')))
                        .ok_or("number in the sparse map out of range")?;
                }
                b'\n' if self.digits > 0 => {
                    let value = std::mem::take(&mut self.current);
                    self.digits = 0;
                    self.push(value)?;
                }
                _ => return Err(format!("unexpected byte {byte:#04x} in the sparse map")),
            }
        }
        Ok(self.done())
    }

    fn push(&mut self, value: u64) -> Result<(), String> {
        match (self.count, self.offset.take()) {
            (None, _) => {
                if value > MAX_SPARSE_SEGMENTS as u64 {
                    return Err(format!(
                        "{value} segments, more than MAX_SPARSE_SEGMENTS ({MAX_SPARSE_SEGMENTS})"
                    ));
                }
                self.count = Some(value);
            }
            (Some(_), None) => self.offset = Some(value),
            (Some(_), Some(offset)) => self.segments.push((offset, value)),
        }
        Ok(())
    }

    fn done(&self) -> bool {
        self.count
            .is_some_and(|count| self.segments.len() as u64 == count)
    }
}

/// Checks a map against the real size and the bytes stored in the archive: segments in
/// order, not overlapping, within the real size, the last one ending at it (GNU tar ends
/// every map with the file's last data byte or an empty segment there), and their lengths
/// adding up to the stored size.
pub(crate) fn validate(map: &SparseMap, stored: u64) -> Result<(), String> {
    let mut end: u64 = 0;
    let mut total: u64 = 0;
    for (index, &(offset, length)) in map.segments.iter().enumerate() {
        if offset < end {
            return Err(format!(
                "segment {index} at offset {offset} starts before the end ({end}) of the one before"
            ));
        }
        end = offset
            .checked_add(length)
            .ok_or_else(|| format!("segment {index} at offset {offset} overflows"))?;
        if end > map.real_size {
            return Err(format!(
                "segment {index} ends at {end}, beyond the real size {}",
                map.real_size
            ));
        }
        total = total
            .checked_add(length)
            .ok_or("segment lengths overflow")?;
    }
    if end != map.real_size {
        return Err(format!(
            "the map ends at {end}, not at the real size {}",
            map.real_size
        ));
    }
    if total != stored {
        return Err(format!(
            "the segments hold {total} bytes but the entry stores {stored}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps() {
        let mut parser = MapParser::default();
        assert_eq!(parser.feed(b"2\n0\n5\n"), Ok(false));
        assert_eq!(parser.feed(b"100\n0\n\0\0"), Ok(true));
        assert_eq!(parser.segments, vec![(0, 5), (100, 0)]);
        assert!(MapParser::default().feed(b"99999999999\n").is_err());
        assert_eq!(parse_map_text(b"0,5,100,0"), Ok(vec![(0, 5), (100, 0)]));
        assert!(parse_map_text(b"0,5,100").is_err());
        let map = SparseMap {
            real_size: 100,
            segments: vec![(0, 5), (100, 0)],
        };
        assert_eq!(validate(&map, 5), Ok(()));
        assert!(validate(&map, 6).is_err());
        let overlapping = SparseMap {
            real_size: 100,
            segments: vec![(0, 5), (3, 97)],
        };
        assert!(validate(&overlapping, 102).is_err());
    }
}
