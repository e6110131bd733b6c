/* sbrk for wasm64, dlmalloc's only source of memory. It replaces Debian emscripten 3.1.6's
 * system/lib/sbrk.c, whose wasm32 overflow check, `(uint32_t)new_brk <= (uint32_t)old_brk`,
 * refuses every request that crosses a 4 GiB boundary on wasm64: the heap stopped at 4 GiB
 * although the module may grow to 16 GiB (an 8B-shaped model could not load). Single-threaded,
 * as the module is. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

int emscripten_resize_heap(size_t requested_size);
size_t emscripten_get_heap_size(void);

extern unsigned char __heap_base;
static uintptr_t brk_top = (uintptr_t)&__heap_base;

uintptr_t *emscripten_get_sbrk_ptr(void) { return &brk_top; }

void *sbrk(intptr_t increment) {
  uintptr_t old = brk_top;
  /* Keep 4-byte alignment, as emscripten's does; a negative increment shrinks (wraps). */
  uintptr_t next = old + (((uintptr_t)increment + 3) & ~(uintptr_t)3);
  if (increment > 0 && next < old) {
    errno = ENOMEM; /* past the 64-bit address space */
    return (void *)-1;
  }
  if (next > emscripten_get_heap_size() && !emscripten_resize_heap(next)) {
    errno = ENOMEM; /* over the Memory-Limit */
    return (void *)-1;
  }
  brk_top = next;
  return (void *)old;
}
