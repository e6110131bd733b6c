//! A wasm32 or wasm64 (simd128) probe of the ggml kernels: `run()` counts the (type, blocks,
//! trial) cases where `Backend::Simd128` differs from `Backend::Scalar` (0 expected;
//! `first_failure()` = 1000 * (type index + 1) + blocks); `run_f32_cols`,
//! `run_ggml_cols` and `run_attention` check the other simd128 kernels the same way;
//! `setup`/`bench` time a 1024 x 4096 matrix-vector product. See run.sh.
#![no_std]
#![cfg_attr(target_arch = "wasm64", feature(simd_wasm64))]
extern crate alloc;
use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use llama::ggml::{self, Activations, GgmlType};
use llama::kernels::BlockScales;
use llama::Backend;
// AOS.wasm is wasm64: `run.sh --wasm64` builds the probe as memory64 too (the engines
// bounds-check its loads explicitly, which changes what is fastest).
#[cfg(target_arch = "wasm32")]
use core::arch::wasm32 as arch;
#[cfg(target_arch = "wasm64")]
use core::arch::wasm64 as arch;

struct Bump;
static mut NEXT: usize = 0;
static mut END: usize = 0;
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if END == 0 {
            NEXT = arch::memory_size(0) * 65536;
            END = NEXT;
        }
        let start = (NEXT + l.align() - 1) & !(l.align() - 1);
        let end = start + l.size();
        if end > END {
            let pages = (end - END + 65535) / 65536 + 16;
            if arch::memory_grow(0, pages) == usize::MAX { return core::ptr::null_mut(); }
            END += pages * 65536;
        }
        NEXT = end;
        start as *mut u8
    }
    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}
#[global_allocator]
static A: Bump = Bump;
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! { arch::unreachable() }

struct X(u64);
impl X {
    fn next(&mut self) -> u64 { self.0 ^= self.0 << 13; self.0 ^= self.0 >> 7; self.0 ^= self.0 << 17; self.0 }
    fn f(&mut self) -> f32 { (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0 }
}
fn offs(ty: GgmlType) -> &'static [usize] {
    use GgmlType::*;
    match ty { Q4_0 | Q5_0 | Q8_0 | IQ4_NL | IQ4_XS => &[0], Q4_1 | Q5_1 | Q4_K | Q5_K => &[0, 2], Q2_K => &[80, 82], Q3_K => &[108], Q6_K => &[208], _ => &[] }
}
fn scale(r: &mut X) -> u16 {
    let h = match r.next() % 6 { 0 => ggml::f32_to_f16(r.f() * 5e-7), 1 => ggml::f32_to_f16(r.f() * 65000.0), 2 => 0x8000, 3 => r.next() as u16, _ => ggml::f32_to_f16(r.f() * 0.02) };
    if h & 0x7c00 == 0x7c00 { h & 0xbfff } else { h }
}

static mut FIRST: u32 = 0;
#[no_mangle]
pub extern "C" fn first_failure() -> u32 { unsafe { FIRST } }
#[no_mangle]
pub extern "C" fn backends() -> u32 { Backend::available().len() as u32 }

/// Number of (type, blocks, trial) cases where simd128 differs from scalar.
#[no_mangle]
pub extern "C" fn run() -> u32 {
    let mut r = X(0x2545_f491_4f6c_dd1d);
    let mut bad = 0;
    for (ti, ty) in GgmlType::ALL.into_iter().enumerate() {
        let maxb = if ty.block_len() == 1 { 70 } else { 17 };
        for blocks in 1..=maxb {
            for trial in 0..3 {
                let cols = blocks * ty.block_len();
                // Rows shorter than eight blocks go four at a time: 21 is five groups and a rest.
                let rows = if trial == 0 { 21 } else { 5 };
                let rb = ty.row_bytes(cols).unwrap();
                let mut w: Vec<u8> = (0..rb * rows).map(|_| r.next() as u8).collect();
                for b in w.chunks_exact_mut(ty.block_bytes()) {
                    match ty {
                        GgmlType::F16 => b.copy_from_slice(&scale(&mut r).to_le_bytes()),
                        GgmlType::BF16 => b.copy_from_slice(&ggml::f32_to_bf16(r.f() * 100.0).to_le_bytes()),
                        GgmlType::F32 => b.copy_from_slice(&r.f().to_le_bytes()),
                        _ => { if r.next() % 16 == 0 { b.fill(0); continue; } for &at in offs(ty) { b[at..at + 2].copy_from_slice(&scale(&mut r).to_le_bytes()); } }
                    }
                }
                let x: Vec<f32> = (0..cols).map(|i| match (i / 32 + trial) % 6 { 0 => 0.0, 1 => r.f() * 1e4, 2 => r.f() * 1e-30, 3 => if i % 64 < 32 { r.f() * 1e30 } else { r.f() }, _ => r.f() * 3.0 }).collect();
                let run = |b: Backend| { let mut a = Activations::new(); a.prepare(ty.activation(), &x); let mut o = alloc::vec![0f32; rows]; b.matmul_ggml(ty, &mut o, &w, rb, &mut a); o };
                // The same rows with the block scales made whole and then split after row
                // 7, as a fused matrix's are (`Matrix::split_rows`): each part its own table.
                let run_split = |b: Backend| {
                    let (nb, at) = (rb / ty.block_bytes(), 7.min(rows));
                    let mut top = BlockScales::new(ty, &w).unwrap();
                    let bottom = top.split_off(at * nb).unwrap();
                    let mut a = Activations::new();
                    a.prepare(ty.activation(), &x);
                    let mut o = alloc::vec![0f32; rows];
                    b.matmul_ggml_with_scales(ty, &mut o[..at], &w[..at * rb], rb, top.rows(0..at, nb), &mut a);
                    b.matmul_ggml_with_scales(ty, &mut o[at..], &w[at * rb..], rb, bottom.rows(0..rows - at, nb), &mut a);
                    o
                };
                let s = run(Backend::Scalar);
                for b in Backend::available() {
                    let v = run(b);
                    let split = run_split(b);
                    if v.iter().chain(&split).zip(s.iter().chain(&s)).any(|(p, q)| p.to_bits() != q.to_bits()) {
                        bad += 1;
                        unsafe { if FIRST == 0 { FIRST = (ti as u32 + 1) * 1000 + blocks as u32; } }
                    }
                }
            }
        }
    }
    bad
}

static mut STATE: Option<(GgmlType, Vec<u8>, usize, Vec<f32>)> = None;
#[no_mangle]
pub extern "C" fn setup(ti: u32, cols: u32) {
    let ty = GgmlType::ALL[ti as usize];
    let (rows, cols) = (1024usize, cols as usize);
    let mut r = X(7);
    let rb = ty.row_bytes(cols).unwrap();
    let mut w: Vec<u8> = (0..rb * rows).map(|_| r.next() as u8).collect();
    for b in w.chunks_exact_mut(ty.block_bytes()) { for &at in offs(ty) { b[at..at + 2].copy_from_slice(&ggml::f32_to_f16(0.01).to_le_bytes()); } if ty.block_len() == 1 { b[1] &= 0x3b; } }
    let x: Vec<f32> = (0..cols).map(|_| r.f()).collect();
    unsafe { STATE = Some((ty, w, rb, x)); }
}
#[no_mangle]
pub extern "C" fn bench(simd: u32, reps: u32) -> f32 {
    #[allow(static_mut_refs)]
    let (ty, w, rb, x) = unsafe { STATE.as_ref().unwrap() };
    let b = if simd == 1 { *Backend::available().last().unwrap() } else { Backend::Scalar };
    let mut a = Activations::new();
    a.prepare(ty.activation(), x);
    let mut o = alloc::vec![0f32; 1024];
    // The block scales once, as a loaded model holds them (not timed).
    let scales = BlockScales::new(*ty, w).unwrap();
    let sc = scales.rows(0..1024, *rb / ty.block_bytes());
    let mut s = 0.0;
    for _ in 0..reps { b.matmul_ggml_with_scales(*ty, &mut o, w, *rb, sc, &mut a); s += o[0]; }
    s
}

/// `matmul_ggml_cols` on simd128 (activations two at a time) against the scalar product
/// activation by activation, every block type, short and long rows, odd and even counts
/// of activations: mismatches.
#[no_mangle]
pub extern "C" fn run_ggml_cols() -> u32 {
    let mut r = X(0x6a09_e667_f3bc_c909);
    let mut bad = 0;
    for (ti, ty) in GgmlType::ALL.into_iter().enumerate().filter(|(_, t)| t.block_len() > 1) {
        for blocks in [1usize, 2, 3, 5, 7, 8, 9, 12, 17] {
            for n in 1..=5usize {
                let (cols, rows) = (blocks * ty.block_len(), if n % 2 == 0 { 21 } else { 6 });
                let rb = ty.row_bytes(cols).unwrap();
                let mut w: Vec<u8> = (0..rb * rows).map(|_| r.next() as u8).collect();
                for b in w.chunks_exact_mut(ty.block_bytes()) {
                    for &at in offs(ty) { b[at..at + 2].copy_from_slice(&scale(&mut r).to_le_bytes()); }
                }
                let mut acts: Vec<Activations> = (0..n).map(|t| {
                    let x: Vec<f32> = (0..cols).map(|i| if (i / 32 + t) % 5 == 0 { 0.0 } else { r.f() * 3.0 }).collect();
                    let mut a = Activations::new();
                    a.prepare(ty.activation(), &x);
                    a
                }).collect();
                let mut want = alloc::vec![0f32; n * rows];
                for (t, a) in acts.iter_mut().enumerate() { Backend::Scalar.matmul_ggml(ty, &mut want[t * rows..(t + 1) * rows], &w, rb, a); }
                for b in Backend::available() {
                    let mut got = alloc::vec![0f32; n * rows];
                    b.matmul_ggml_cols(ty, &mut got, 0, rows, &w, rb, &mut acts);
                    if got.iter().zip(&want).any(|(p, q)| p.to_bits() != q.to_bits()) {
                        bad += 1;
                        unsafe { if FIRST == 0 { FIRST = (ti as u32 + 1) * 1000 + blocks as u32; } }
                    }
                }
            }
        }
    }
    bad
}

/// `bench_ggml_cols(together, reps)` after `setup(type, cols)`: 32 activations through a
/// 64 KB block of rows (what prompt processing runs), one at a time or together.
#[no_mangle]
pub extern "C" fn bench_ggml_cols(together: u32, reps: u32) -> f32 {
    #[allow(static_mut_refs)]
    let (ty, w, rb, x) = unsafe { STATE.as_ref().unwrap() };
    let b = *Backend::available().last().unwrap();
    let rows = (64 * 1024 / rb).max(1);
    let w = &w[..rows * rb];
    let mut acts: Vec<Activations> = (0..32).map(|t| {
        let mut a = Activations::new();
        let xt: Vec<f32> = x.iter().map(|v| v * (1.0 + t as f32 / 32.0)).collect();
        a.prepare(ty.activation(), &xt);
        a
    }).collect();
    let mut o = alloc::vec![0f32; 32 * rows];
    let scales = BlockScales::new(*ty, w).unwrap();
    let sc = scales.rows(0..rows, *rb / ty.block_bytes());
    let mut s = 0.0;
    for _ in 0..reps {
        if together == 1 {
            b.matmul_ggml_cols_with_scales(*ty, &mut o, 0, rows, w, *rb, sc, &mut acts);
        } else {
            for (t, a) in acts.iter_mut().enumerate() { b.matmul_ggml_with_scales(*ty, &mut o[t * rows..(t + 1) * rows], w, *rb, sc, a); }
        }
        s += o[0];
    }
    s
}

/// Rows of `setup`'s block that `bench_ggml_cols` times.
#[no_mangle]
pub extern "C" fn ggml_cols_rows() -> u32 {
    #[allow(static_mut_refs)]
    let (_, _, rb, _) = unsafe { STATE.as_ref().unwrap() };
    (64 * 1024 / rb).max(1) as u32
}

/// `matmul_f32_cols` and `matmul_f32` on simd128 against the scalar product vector by
/// vector (row lengths with and without lane tails, every tile remainder of rows and
/// vectors, odd row counts): mismatches.
#[no_mangle]
pub extern "C" fn run_f32_cols() -> u32 {
    let mut r = X(0x9e37_79b9_7f4a_7c15);
    let mut bad = 0;
    for n in [1usize, 5, 8, 13, 64, 67] {
        for rows in [1usize, 2, 3, 4, 5, 9] {
            let w: Vec<f32> = (0..rows * n).map(|_| r.f()).collect();
            for vectors in 1..=9 {
                let x: Vec<f32> = (0..vectors * n).map(|i| if i % 7 == 3 { 0.0 } else { r.f() * 3.0 }).collect();
                let (off, stride) = (2, rows + 3);
                for b in Backend::available() {
                    let mut out = alloc::vec![f32::NAN; off + vectors * stride];
                    b.matmul_f32_cols(&mut out, off, stride, &w, &x, n);
                    for (t, xt) in x.chunks_exact(n).enumerate() {
                        let mut want = alloc::vec![0f32; rows];
                        Backend::Scalar.matmul_f32(&mut want, &w, xt);
                        if want.iter().zip(&out[off + t * stride..]).any(|(p, q)| p.to_bits() != q.to_bits()) { bad += 1; }
                        // And `matmul_f32` alone (token generation: rows three at a time).
                        let mut one = alloc::vec![f32::NAN; rows];
                        b.matmul_f32(&mut one, &w, xt);
                        if want.iter().zip(&one).any(|(p, q)| p.to_bits() != q.to_bits()) { bad += 1; }
                    }
                }
            }
        }
    }
    bad
}

/// The attention kernels on simd128 against scalar: scores (keys `stride` apart, every
/// key-pair remainder), value sums (every output-group remainder) and one position's
/// scores for every head: mismatches.
#[no_mangle]
pub extern "C" fn run_attention() -> u32 {
    let mut r = X(0x2545_f491_4f6c_dd1d);
    let mut bad = 0;
    for n in [1usize, 5, 8, 13, 16, 24, 40, 64, 67, 256] {
        for positions in (0..=9).chain([33]) {
            let stride = n + 3;
            let cache: Vec<f32> = (0..positions.max(1) * stride).map(|_| r.f() * 2.0).collect();
            let q: Vec<f32> = (0..n).map(|_| r.f()).collect();
            let weights: Vec<f32> = (0..positions).map(|_| r.f()).collect();
            let run = |b: Backend| {
                let (mut scores, mut sums) = (alloc::vec![f32::NAN; positions], alloc::vec![f32::NAN; n]);
                b.attention_scores(&mut scores, &q, &cache, stride);
                b.attention_values(&mut sums, &weights, &cache, stride);
                (scores, sums)
            };
            let want = run(Backend::Scalar);
            for b in Backend::available() {
                let got = run(b);
                let same = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits());
                if !same(&want.0, &got.0) || !same(&want.1, &got.1) { bad += 1; }
            }
        }
        // One position's scores for every head (grouped-query shapes), `stride` apart.
        for (heads, key_heads) in [(1usize, 1usize), (4, 1), (9, 3), (12, 12)] {
            let q: Vec<f32> = (0..heads * n).map(|_| r.f()).collect();
            let key: Vec<f32> = (0..key_heads * n).map(|_| r.f() * 2.0).collect();
            let run = |b: Backend| {
                let mut out = alloc::vec![f32::NAN; heads * 3];
                b.attention_scores_heads(&mut out, 3, &q, &key, n);
                out
            };
            let want = run(Backend::Scalar);
            for b in Backend::available() {
                if want.iter().zip(&run(b)).any(|(p, q)| p.to_bits() != q.to_bits()) { bad += 1; }
            }
        }
    }
    bad
}

static mut F32: Option<(Vec<f32>, Vec<f32>, Vec<f32>, usize)> = None;
/// A cache-resident chunk of f32 rows (64 KB, as prompt processing runs it) of length `n`
/// and 32 vectors.
#[no_mangle]
pub extern "C" fn setup_f32_cols(n: u32) {
    let n = n as usize;
    let rows = 64 * 1024 / (4 * n);
    let mut r = X(7);
    let w: Vec<f32> = (0..rows * n).map(|_| r.f()).collect();
    let x: Vec<f32> = (0..32 * n).map(|_| r.f()).collect();
    unsafe { F32 = Some((w, x, alloc::vec![0f32; 32 * rows], n)); }
}
/// `reps` times the chunk against the 32 vectors: `together` = 1 through
/// `matmul_f32_cols`, 0 one vector at a time through `matmul_f32`.
#[no_mangle]
pub extern "C" fn bench_f32_cols(together: u32, reps: u32) -> f32 {
    #[allow(static_mut_refs)]
    let (w, x, out, n) = unsafe { F32.as_mut().unwrap() };
    let (n, rows) = (*n, w.len() / *n);
    let b = *Backend::available().last().unwrap();
    for _ in 0..reps {
        if together == 1 {
            b.matmul_f32_cols(out, 0, rows, w, x, n);
        } else {
            for (k, xt) in x.chunks_exact(n).enumerate() { b.matmul_f32(&mut out[k * rows..(k + 1) * rows], w, xt); }
        }
    }
    out[0]
}
