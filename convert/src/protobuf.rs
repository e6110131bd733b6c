//! A minimal protobuf wire-format reader: enough to walk SentencePiece's ModelProto
//! (varints, fixed 32/64-bit values, length-delimited fields). Every read is
//! bounds-checked; malformed input is an error, never a panic.

use crate::error::{Error, Result};

/// A decoded field value.
#[derive(Clone, Copy, Debug)]
pub enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// Iterates over the `(field number, value)` pairs of one message.
pub struct Message<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Message<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Message { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| Error::Invalid("protobuf: truncated varint".into()))?;
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Error::Invalid(
            "protobuf: varint longer than 10 bytes".into(),
        ))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "protobuf: a {n}-byte field runs past the end of its message at offset {}",
                    self.pos
                ))
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next field, or `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<(u32, Field<'a>)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = (key >> 3) as u32;
        if number == 0 || key >> 3 > u32::MAX as u64 >> 3 {
            return Err(Error::Invalid(format!(
                "protobuf: bad field number {}",
                key >> 3
            )));
        }
        let value = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => Field::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().unwrap_or_default(),
            )),
            2 => {
                let n = self.varint()?;
                let n = usize::try_from(n)
                    .map_err(|_| Error::Invalid("protobuf: absurd length".into()))?;
                Field::Bytes(self.take(n)?)
            }
            5 => Field::Fixed32(u32::from_le_bytes(
                self.take(4)?.try_into().unwrap_or_default(),
            )),
            w => {
                return Err(Error::Invalid(format!(
                    "protobuf: unsupported wire type {w} (field {number})"
                )))
            }
        };
        Ok(Some((number, value)))
    }
}
