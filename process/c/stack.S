# Shadow-stack exports the emscripten glue calls (wasm64: pointers are i64).
# The stack is placed first in memory (wasm-ld --stack-first) between the linker-defined
# __stack_low and __stack_high; __stack_pointer starts at __stack_high and grows down.
.globaltype __stack_pointer, i64

.globl emscripten_stack_init
.globl emscripten_stack_get_base
.globl emscripten_stack_get_end
.globl emscripten_stack_get_free
.globl emscripten_stack_get_current
.globl _emscripten_stack_alloc
.globl _emscripten_stack_restore

emscripten_stack_init:
  .functype emscripten_stack_init () -> ()
  end_function

emscripten_stack_get_base:
  .functype emscripten_stack_get_base () -> (i64)
  i64.const __stack_high
  end_function

# The lowest address the stack may reach; the glue writes its 8-byte cookie there and
# "emsc" at address 0. --stack-first puts __stack_low at 0, so keep 16 bytes clear.
emscripten_stack_get_end:
  .functype emscripten_stack_get_end () -> (i64)
  i64.const __stack_low
  i64.const 0x1f
  i64.add
  i64.const -0x10
  i64.and
  end_function

emscripten_stack_get_free:
  .functype emscripten_stack_get_free () -> (i64)
  global.get __stack_pointer
  i64.const __stack_low
  i64.sub
  end_function

emscripten_stack_get_current:
  .functype emscripten_stack_get_current () -> (i64)
  global.get __stack_pointer
  end_function

_emscripten_stack_restore:
  .functype _emscripten_stack_restore (i64) -> ()
  local.get 0
  global.set __stack_pointer
  end_function

_emscripten_stack_alloc:
  .functype _emscripten_stack_alloc (i64) -> (i64)
  .local i64
  global.get __stack_pointer
  local.get 0
  i64.sub
  i64.const -0x10
  i64.and
  local.tee 1
  global.set __stack_pointer
  local.get 1
  end_function
