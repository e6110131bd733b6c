//! Where model bytes come from. The engine does no I/O of its own: callers hand it a
//! [`Source`] — a byte slice, a file (with `std`), WeaveDrive in the AO module — and
//! the loaders read it front to back, once, in chunks, so a model never needs a
//! second copy in memory.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Error, Result};

/// A sequential byte source of known total size.
pub trait Source {
    /// Total size in bytes.
    fn size(&self) -> u64;
    /// Fill `buf` entirely with the next bytes.
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()>;
}

impl Source for &[u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        if buf.len() > self.len() {
            return Err(Error::Source(format!("wanted {} bytes, {} left", buf.len(), self.len())));
        }
        let (head, tail) = self.split_at(buf.len());
        buf.copy_from_slice(head);
        *self = tail;
        Ok(())
    }
}

/// Adapts any `std::io::Read` of known size (a file, an HTTP body).
#[cfg(feature = "std")]
pub struct IoSource<R> {
    reader: R,
    size: u64,
}

#[cfg(feature = "std")]
impl<R: std::io::Read> IoSource<R> {
    pub fn new(reader: R, size: u64) -> Self {
        IoSource { reader, size }
    }
}

#[cfg(feature = "std")]
impl IoSource<std::io::BufReader<std::fs::File>> {
    /// Open a file for reading.
    pub fn open(path: &std::path::Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::Source(format!("{}: {e}", path.display())))?;
        let size = file.metadata().map_err(|e| Error::Source(format!("{}: {e}", path.display())))?.len();
        Ok(IoSource::new(std::io::BufReader::with_capacity(1 << 20, file), size))
    }
}

#[cfg(feature = "std")]
impl<R: std::io::Read> Source for IoSource<R> {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        self.reader.read_exact(buf).map_err(|e| Error::Source(e.to_string()))
    }
}

/// A cursor over a [`Source`] that tracks the offset, checks every read against
/// the remaining size (so a lying header cannot make us allocate or read past the
/// end), and reports progress.
pub struct Reader<'a> {
    src: &'a mut dyn Source,
    pos: u64,
    size: u64,
    progress: &'a mut dyn FnMut(u64, u64),
    last_report: u64,
}

/// Read granularity for bulk tensor data (and progress reports).
const CHUNK: usize = 1 << 20;

impl<'a> Reader<'a> {
    pub fn new(src: &'a mut dyn Source, progress: &'a mut dyn FnMut(u64, u64)) -> Self {
        let size = src.size();
        Reader { src, pos: 0, size, progress, last_report: 0 }
    }

    pub fn pos(&self) -> u64 {
        self.pos
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn remaining(&self) -> u64 {
        self.size - self.pos
    }

    /// Fails with a `Truncated` error naming `what` unless `n` bytes remain.
    pub fn need(&self, n: u64, what: &str) -> Result<()> {
        if n > self.remaining() {
            return Err(Error::Truncated { what: String::from(what), needed: n, available: self.remaining() });
        }
        Ok(())
    }

    pub fn bytes(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        self.need(buf.len() as u64, what)?;
        self.src.read_exact(buf)?;
        self.pos += buf.len() as u64;
        if self.pos - self.last_report >= CHUNK as u64 || self.pos == self.size {
            self.last_report = self.pos;
            (self.progress)(self.pos, self.size);
        }
        Ok(())
    }

    pub fn skip(&mut self, mut n: u64, what: &str) -> Result<()> {
        self.need(n, what)?;
        let mut scratch = [0u8; 4096];
        while n > 0 {
            let k = n.min(scratch.len() as u64) as usize;
            self.bytes(&mut scratch[..k], what)?;
            n -= k as u64;
        }
        Ok(())
    }

    pub fn u8(&mut self, what: &str) -> Result<u8> {
        let mut b = [0u8; 1];
        self.bytes(&mut b, what)?;
        Ok(b[0])
    }
    pub fn u32(&mut self, what: &str) -> Result<u32> {
        let mut b = [0u8; 4];
        self.bytes(&mut b, what)?;
        Ok(u32::from_le_bytes(b))
    }
    pub fn i32(&mut self, what: &str) -> Result<i32> {
        Ok(self.u32(what)? as i32)
    }
    pub fn u64(&mut self, what: &str) -> Result<u64> {
        let mut b = [0u8; 8];
        self.bytes(&mut b, what)?;
        Ok(u64::from_le_bytes(b))
    }
    pub fn f32(&mut self, what: &str) -> Result<f32> {
        Ok(f32::from_bits(self.u32(what)?))
    }

    /// Read `count` little-endian f32 values into a new vector, chunk by chunk.
    pub fn f32s(&mut self, count: usize, what: &str) -> Result<Vec<f32>> {
        self.need((count as u64).saturating_mul(4), what)?;
        let mut out = try_vec_with_capacity::<f32>(count, what)?;
        let mut buf = alloc::vec![0u8; CHUNK.min(count * 4)];
        let mut left = count;
        while left > 0 {
            let k = left.min(CHUNK / 4);
            self.bytes(&mut buf[..k * 4], what)?;
            out.extend(buf[..k * 4].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
            left -= k;
        }
        Ok(out)
    }

    /// Read `count` little-endian f16 values, widened (exactly) to f32.
    pub fn f16s(&mut self, count: usize, what: &str) -> Result<Vec<f32>> {
        self.need((count as u64).saturating_mul(2), what)?;
        let mut out = try_vec_with_capacity::<f32>(count, what)?;
        let mut buf = alloc::vec![0u8; CHUNK.min(count * 2)];
        let mut left = count;
        while left > 0 {
            let k = left.min(CHUNK / 2);
            self.bytes(&mut buf[..k * 2], what)?;
            out.extend(buf[..k * 2].chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))));
            left -= k;
        }
        Ok(out)
    }

    /// Read `count` raw bytes into a new vector, chunk by chunk (packed tensors).
    pub fn byte_vec(&mut self, count: usize, what: &str) -> Result<Vec<u8>> {
        self.need(count as u64, what)?;
        let mut out = try_zeroed::<u8>(count, what)?;
        for chunk in out.chunks_mut(CHUNK) {
            self.bytes(chunk, what)?;
        }
        Ok(out)
    }

    /// Read `count` int8 values.
    pub fn i8s(&mut self, count: usize, what: &str) -> Result<Vec<i8>> {
        self.need(count as u64, what)?;
        let mut out = try_vec_with_capacity::<i8>(count, what)?;
        let mut buf = alloc::vec![0u8; CHUNK.min(count)];
        let mut left = count;
        while left > 0 {
            let k = left.min(CHUNK);
            self.bytes(&mut buf[..k], what)?;
            out.extend(buf[..k].iter().map(|&b| b as i8));
            left -= k;
        }
        Ok(out)
    }
}

/// `v[from..]` moved into a vector of its own, `v` keeping `..from` and giving the rest
/// of its memory back (dlmalloc and glibc shrink in place): a fused matrix split by rows.
pub fn split_vec_off<T: Copy>(v: &mut Vec<T>, from: usize, what: &str) -> Result<Vec<T>> {
    let mut t = try_vec_with_capacity(v.len() - from, what)?;
    t.extend_from_slice(&v[from..]);
    v.truncate(from);
    v.shrink_to_fit();
    Ok(t)
}

/// Allocate without aborting: a model too large for this memory is an error, not a trap.
pub fn try_vec_with_capacity<T>(count: usize, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(count).map_err(|_| Error::OutOfMemory {
        bytes: (count as u64).saturating_mul(core::mem::size_of::<T>() as u64),
        what: String::from(what),
    })?;
    Ok(v)
}

/// A zero-filled vector, allocated without aborting.
pub fn try_zeroed<T: Clone + Default>(count: usize, what: &str) -> Result<Vec<T>> {
    let mut v = try_vec_with_capacity(count, what)?;
    v.resize(count, T::default());
    Ok(v)
}

/// IEEE half to single precision (exact: every f16 is an f32).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let mant = (h & 0x3ff) as u32;
    let bits = match (exp, mant) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalise the mantissa.
            let mut e = 127 - 15 + 1;
            let mut m = m;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((m & 0x3ff) << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}
