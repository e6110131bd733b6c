//! The global allocator is the C library's malloc (emscripten's dlmalloc, linked by
//! build.sh), so Lua, the C library and Rust share one heap in linear memory.
//!
//! Running out of memory must not kill the process. Lua's allocations ([`lua_alloc`])
//! return NULL and become a Lua error. Rust's cannot fail softly everywhere (a `Vec`
//! push aborts), so Rust has an emergency reserve: a block held back from the heap and
//! freed when a Rust allocation would otherwise fail, then taken again at the next
//! message. A message whose Lua code filled the heap can still build its Error result.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn free(ptr: *mut c_void);
    fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    fn calloc(n: usize, size: usize) -> *mut c_void;
    fn memalign(align: usize, size: usize) -> *mut c_void;
}

/// dlmalloc returns 16-byte aligned blocks on wasm64 (2 * sizeof(size_t)).
const MALLOC_ALIGN: usize = 16;

/// The emergency reserve: enough for any result or error message the module builds
/// (the JSON of a reply, an error string), small beside a process's memory.
const RESERVE_BYTES: usize = 8 << 20;
static RESERVE: crate::Global<*mut c_void> = crate::Global(std::cell::UnsafeCell::new(std::ptr::null_mut()));

/// Take the reserve back if it was spent (at the start of every message). If the heap
/// cannot spare it now, the message runs without one.
pub fn arm_reserve() {
    let r = RESERVE.get();
    if r.is_null() {
        // SAFETY: a plain C allocation, freed only by `release_reserve`.
        *r = unsafe { malloc(RESERVE_BYTES) };
    }
}

/// Set when the reserve was spent in this message (see [`reserve_spent`]).
static SPENT: crate::Global<bool> = crate::Global(std::cell::UnsafeCell::new(false));

/// Free the reserve for a failed allocation of `size` bytes that it could satisfy;
/// whether there was one to free.
fn release_reserve(size: usize) -> bool {
    let r = RESERVE.get();
    if r.is_null() || size > RESERVE_BYTES {
        return false;
    }
    // SAFETY: the block came from malloc in `arm_reserve` and is freed once (nulled).
    unsafe { free(*r) };
    *r = std::ptr::null_mut();
    *SPENT.get() = true;
    true
}

/// Whether the reserve was spent since the last call (the heap was full: worth a
/// collection at the end of the message).
pub fn reserve_spent() -> bool {
    std::mem::take(SPENT.get())
}

/// Set when a Lua allocation failed during this message (see [`take_lua_alloc_failed`]).
static LUA_ALLOC_FAILED: crate::Global<bool> = crate::Global(std::cell::UnsafeCell::new(false));

/// Lua's allocator (`lua_Alloc`), as lauxlib's own: realloc / free, and NULL when the
/// heap is exhausted, which Lua answers with a full collection, a retry and then a
/// "not enough memory" error (never the Rust reserve: that is for after the error).
pub unsafe extern "C-unwind" fn lua_alloc(_ud: *mut c_void, ptr: *mut c_void, osize: usize, nsize: usize) -> *mut c_void {
    if nsize == 0 {
        // SAFETY: ptr is NULL or a block this allocator returned.
        unsafe { free(ptr) };
        return std::ptr::null_mut();
    }
    // (For a new object Lua passes its type in `osize`, so only an existing block can shrink.)
    let shrinks = !ptr.is_null() && nsize <= osize;
    // Once the reserve went to a Rust allocation the heap is full: Lua must fail now,
    // not take the freed reserve that the message's result will need.
    if RESERVE.get().is_null() && *SPENT.get() && !shrinks {
        *LUA_ALLOC_FAILED.get() = true;
        return std::ptr::null_mut();
    }
    // SAFETY: as above; realloc(NULL, n) allocates. Lua needs no more than malloc's alignment.
    let p = unsafe { realloc(ptr, nsize) };
    if p.is_null() {
        *LUA_ALLOC_FAILED.get() = true;
        // Lua assumes shrinking never fails: the old, larger block still serves.
        if shrinks {
            return ptr;
        }
    }
    p
}

/// Whether a Lua allocation failed since the last call. Some of Lua's failures skip its
/// emergency collection (lauxlib's string buffers call the allocator directly), so the
/// garbage of the failed work would hold the heap until the next cycle: the caller then
/// collects it.
pub fn take_lua_alloc_failed() -> bool {
    std::mem::take(LUA_ALLOC_FAILED.get())
}

/// Run `attempt`; if it returns NULL and the reserve can be spent on it, spend it and
/// try once more.
fn with_reserve(size: usize, mut attempt: impl FnMut() -> *mut u8) -> *mut u8 {
    let p = attempt();
    if p.is_null() && release_reserve(size) {
        return attempt();
    }
    p
}

pub struct LibcMalloc;

// SAFETY: malloc/free/realloc/calloc/memalign are the C allocator; the module is
// single-threaded, and layouts with larger alignments go through memalign.
unsafe impl GlobalAlloc for LibcMalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the same layout, forwarded.
        with_reserve(layout.size(), || unsafe { self.alloc_from_heap(layout) })
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the same layout, forwarded.
        with_reserve(layout.size(), || unsafe { self.alloc_zeroed_from_heap(layout) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: ptr came from malloc/calloc/realloc/memalign below.
        unsafe { free(ptr as *mut c_void) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded; a failed realloc leaves ptr valid.
        with_reserve(new_size, || unsafe { self.realloc_from_heap(ptr, layout, new_size) })
    }
}

impl LibcMalloc {
    unsafe fn alloc_from_heap(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: plain C allocation of layout.size() bytes.
            unsafe { malloc(layout.size()) as *mut u8 }
        } else {
            // SAFETY: align is a power of two, as memalign requires.
            unsafe { memalign(layout.align(), layout.size()) as *mut u8 }
        }
    }

    unsafe fn alloc_zeroed_from_heap(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: calloc zero-fills layout.size() bytes.
            unsafe { calloc(1, layout.size()) as *mut u8 }
        } else {
            // SAFETY: as in alloc; then zero the new block we own.
            unsafe {
                let p = self.alloc_from_heap(layout);
                if !p.is_null() {
                    std::ptr::write_bytes(p, 0, layout.size());
                }
                p
            }
        }
    }

    unsafe fn realloc_from_heap(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: ptr came from this allocator with an alignment malloc guarantees.
            unsafe { realloc(ptr as *mut c_void, new_size) as *mut u8 }
        } else {
            // SAFETY: allocate, copy the smaller size, free the old block.
            unsafe {
                let new = self.alloc_from_heap(Layout::from_size_align_unchecked(new_size, layout.align()));
                if !new.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    free(ptr as *mut c_void);
                }
                new
            }
        }
    }
}
