/* Emscripten-style setjmp/longjmp runtime for code compiled with
 * `-mllvm -enable-emscripten-sjlj` (Lua's luaD_rawrunprotected / luaD_throw).
 *
 * LLVM lowers setjmp/longjmp into calls to the functions below plus `invoke_vjj`,
 * an import of the AO loader's glue (emscripten 3.1.59):
 *   invoke_vjj(fn, a, b) { sp = stackSave(); try { dynCall_vjj(fn, a, b) }
 *                          catch (e) { stackRestore(sp); if (e !== e+0) throw e; setThrew(1, 0) } }
 * and `_emscripten_throw_longjmp` throws a number (Infinity). So a longjmp is a JS throw
 * that unwinds the wasm frames up to the nearest invoke_vjj, which records it with
 * setThrew; the lowered caller then reads __THREW__/__threwValue and jumps to the
 * matching setjmp label. Only the `vjj` shape is offered by the glue: keep setjmp out
 * of every other function (Lua 5.3 needs no other).
 *
 * Compiled WITHOUT -enable-emscripten-sjlj (no setjmp here). */
#include <stdint.h>

uintptr_t __THREW__ = 0;
int __threwValue = 0;
static uint32_t temp_ret0;

/* Exported: the glue calls setThrew(1, 0) (its wrapper drops the second argument). */
__attribute__((export_name("setThrew")))
void setThrew(uintptr_t threw, int value) {
  if (__THREW__ == 0) {
    __THREW__ = threw;
    __threwValue = value;
  }
}

void setTempRet0(uint32_t value) { temp_ret0 = value; }
uint32_t getTempRet0(void) { return temp_ret0; }

/* Same layout as emscripten 3.1.5x's emscripten_setjmp.c (fits in musl's jmp_buf). */
typedef struct jmp_buf_impl {
  void *func_invocation_id;
  uint32_t label;
} jmp_buf_impl;

void __wasm_setjmp(void *env, uint32_t label, void *func_invocation_id) {
  jmp_buf_impl *jb = env;
  jb->func_invocation_id = func_invocation_id;
  jb->label = label;
}

uint32_t __wasm_setjmp_test(void *env, void *func_invocation_id) {
  jmp_buf_impl *jb = env;
  if (jb->func_invocation_id == func_invocation_id) return jb->label;
  return 0;
}

__attribute__((import_module("env"), import_name("_emscripten_throw_longjmp"), noreturn))
void _emscripten_throw_longjmp(void);

__attribute__((noreturn))
void emscripten_longjmp(uintptr_t env, int val) {
  setThrew(env, val);
  _emscripten_throw_longjmp();
}

/* Exported: the glue's invoke_vjj calls this (with a JS Number, so an i32 index)
 * rather than the table. */
typedef void (*vjj_fn)(int64_t, int64_t);
__attribute__((export_name("dynCall_vjj")))
void dynCall_vjj(uint32_t index, int64_t a, int64_t b) {
  ((vjj_fn)(uintptr_t)index)(a, b);
}
