//! The transcendental functions the forward pass uses, from the `libm` crate (a Rust
//! port of musl's libm) rather than the platform's C library, whose results differ
//! between glibc, macOS and a wasm host in the last bit. `sqrt` is correctly rounded
//! by IEEE 754 everywhere, so hardware or software gives the same bits.

#[inline]
pub fn expf(x: f32) -> f32 {
    libm::expf(x)
}
#[inline]
pub fn sqrtf(x: f32) -> f32 {
    libm::sqrtf(x)
}
#[inline]
pub fn powf(x: f32, y: f32) -> f32 {
    libm::powf(x, y)
}
#[inline]
pub fn sinf(x: f32) -> f32 {
    libm::sinf(x)
}
#[inline]
pub fn cosf(x: f32) -> f32 {
    libm::cosf(x)
}
#[inline]
pub fn tanhf(x: f32) -> f32 {
    libm::tanhf(x)
}
