//! The global allocator is the C library's malloc (emscripten's dlmalloc, linked by
//! build.sh), so Lua, the C library and Rust share one heap in linear memory.

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

pub struct LibcMalloc;

// SAFETY: malloc/free/realloc/calloc/memalign are the C allocator; the module is
// single-threaded, and layouts with larger alignments go through memalign.
unsafe impl GlobalAlloc for LibcMalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: plain C allocation of layout.size() bytes.
            unsafe { malloc(layout.size()) as *mut u8 }
        } else {
            // SAFETY: align is a power of two, as memalign requires.
            unsafe { memalign(layout.align(), layout.size()) as *mut u8 }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: calloc zero-fills layout.size() bytes.
            unsafe { calloc(1, layout.size()) as *mut u8 }
        } else {
            // SAFETY: as in alloc; then zero the new block we own.
            unsafe {
                let p = self.alloc(layout);
                if !p.is_null() {
                    std::ptr::write_bytes(p, 0, layout.size());
                }
                p
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: ptr came from malloc/calloc/realloc/memalign above.
        unsafe { free(ptr as *mut c_void) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: ptr came from this allocator with an alignment malloc guarantees.
            unsafe { realloc(ptr as *mut c_void, new_size) as *mut u8 }
        } else {
            // SAFETY: allocate, copy the smaller size, free the old block.
            unsafe {
                let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
                if !new.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new
            }
        }
    }
}
