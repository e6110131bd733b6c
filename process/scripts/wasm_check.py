#!/usr/bin/env python3
"""Checks a wasm64 module against the AO loader's contract
(Module-Format wasm64-unknown-emscripten-draft_2024_02_15, the emscripten 3.1.59 glue in
@permaweb/ao-loader): every import is one the glue offers, with a signature the glue's JS
can serve (an i64 result needs a BigInt; Number-returning imports must return i32/f64),
and the exports the glue calls exist. With --final also: the function table is 32-bit
(Node 20 has no table64), memory is 64-bit, and the Asyncify exports exist.

usage: wasm_check.py [--final] [--list] module.wasm
"""
import sys

# The glue's `wasmImports` (served under both `env` and `wasi_snapshot_preview1`).
GLUE_IMPORTS = """
__assert_fail metering_gasUsed __asyncjs__weavedrive_close __asyncjs__weavedrive_open
__asyncjs__weavedrive_read __cxa_throw __syscall_chmod __syscall_dup3 __syscall_faccessat
__syscall_fchmod __syscall_fchown32 __syscall_fcntl64 __syscall_fstat64 __syscall_ftruncate64
__syscall_getcwd __syscall_ioctl __syscall_lstat64 __syscall_mkdirat __syscall_newfstatat
__syscall_openat __syscall_readlinkat __syscall_renameat __syscall_rmdir __syscall_stat64
__syscall_unlinkat __syscall_utimensat _abort_js _emscripten_get_now_is_monotonic
_emscripten_memcpy_js _emscripten_system _emscripten_throw_longjmp _gmtime_js _localtime_js
_mktime_js _munmap_js _tzset_js emscripten_date_now emscripten_err emscripten_get_heap_max
emscripten_get_now emscripten_resize_heap environ_get environ_sizes_get exit fd_close
fd_fdstat_get fd_read fd_seek fd_sync fd_write invoke_vjj strftime strftime_l
""".split()
MODULES = {"env", "wasi_snapshot_preview1"}

# Signatures as the glue's JS serves them ("" = no result). p = i64 pointer/size.
I, J, F, D = "i32", "i64", "f32", "f64"
SIGS = {
    "__asyncjs__weavedrive_open": ((J, J), (I,)),
    "__asyncjs__weavedrive_read": ((I, J, J), (I,)),
    "__asyncjs__weavedrive_close": ((I,), (I,)),
    "_emscripten_throw_longjmp": ((), ()),
    "invoke_vjj": ((J, J, J), ()),
    "_abort_js": ((), ()),
    "exit": ((I,), ()),
    "emscripten_date_now": ((), (D,)),
    "emscripten_get_now": ((), (D,)),
    "emscripten_get_heap_max": ((), (J,)),
    "emscripten_resize_heap": ((J,), (I,)),
    "_emscripten_memcpy_js": ((J, J, J), ()),
    "_emscripten_system": ((J,), (I,)),
    "_gmtime_js": ((J, J), ()),
    "_localtime_js": ((J, J), ()),
    "_mktime_js": ((J,), (J,)),
    "_tzset_js": ((J, J, J, J), ()),
    "strftime": ((J, J, J, J), (J,)),
    "strftime_l": ((J, J, J, J, J), (J,)),
    "fd_write": ((I, J, J, J), (I,)),
    "fd_read": ((I, J, J, J), (I,)),
    "fd_seek": ((I, J, I, J), (I,)),
    "fd_close": ((I,), (I,)),
    "fd_sync": ((I,), (I,)),
    "fd_fdstat_get": ((I, J), (I,)),
    "environ_get": ((J, J), (I,)),
    "environ_sizes_get": ((J, J), (I,)),
    "__syscall_openat": ((I, J, I, J), (I,)),
    "__syscall_unlinkat": ((I, J, I), (I,)),
    "__syscall_renameat": ((I, J, I, J), (I,)),
    "__syscall_rmdir": ((J,), (I,)),
    "__syscall_fcntl64": ((I, I, J), (I,)),
    "__syscall_ioctl": ((I, I, J), (I,)),
    "__syscall_fstat64": ((I, J), (I,)),
    "__syscall_stat64": ((J, J), (I,)),
    "__syscall_lstat64": ((J, J), (I,)),
    "__syscall_newfstatat": ((I, J, J, I), (I,)),
    "__syscall_getcwd": ((J, J), (I,)),
    "__syscall_faccessat": ((I, J, I, I), (I,)),
    "__syscall_mkdirat": ((I, J, I), (I,)),
    "__syscall_readlinkat": ((I, J, J, J), (I,)),
    "__syscall_ftruncate64": ((I, J), (I,)),
    "__syscall_dup3": ((I, I, I), (I,)),
}

REQUIRED_EXPORTS = """memory __indirect_function_table __wasm_call_ctors handle malloc free
setThrew dynCall_vjj emscripten_stack_init emscripten_stack_get_end
emscripten_stack_get_current _emscripten_stack_alloc _emscripten_stack_restore""".split()
ASYNCIFY_EXPORTS = "asyncify_start_unwind asyncify_stop_unwind asyncify_start_rewind asyncify_stop_rewind".split()
VALTYPES = {0x7F: I, 0x7E: J, 0x7D: F, 0x7C: D, 0x7B: "v128", 0x70: "funcref", 0x6F: "externref"}


class Reader:
    def __init__(self, data, pos=0):
        self.d, self.p = data, pos

    def byte(self):
        b = self.d[self.p]
        self.p += 1
        return b

    def uleb(self):
        r = s = 0
        while True:
            b = self.byte()
            r |= (b & 0x7F) << s
            s += 7
            if b < 0x80:
                return r

    def name(self):
        n = self.uleb()
        v = self.d[self.p:self.p + n].decode()
        self.p += n
        return v

    def limits(self):
        flags = self.byte()
        lo = self.uleb()
        hi = self.uleb() if flags & 1 else None
        return flags, lo, hi


def parse(data):
    assert data[:4] == b"\0asm", "not a wasm module"
    r = Reader(data, 8)
    types, imports, exports, tables, memories = [], [], {}, [], []
    while r.p < len(data):
        sid, size = r.byte(), r.uleb()
        end = r.p
        s = Reader(data[:r.p + size], r.p)
        r.p += size
        if sid == 1:
            for _ in range(s.uleb()):
                form = s.byte()
                assert form == 0x60, "unexpected type form %#x" % form
                params = tuple(VALTYPES.get(s.byte(), "?") for _ in range(s.uleb()))
                results = tuple(VALTYPES.get(s.byte(), "?") for _ in range(s.uleb()))
                types.append((params, results))
        elif sid == 2:
            for _ in range(s.uleb()):
                mod, name, kind = s.name(), s.name(), s.byte()
                if kind == 0:
                    imports.append((mod, name, "func", types[s.uleb()]))
                elif kind == 1:
                    s.byte()
                    imports.append((mod, name, "table", s.limits()))
                elif kind == 2:
                    imports.append((mod, name, "memory", s.limits()))
                elif kind == 3:
                    imports.append((mod, name, "global", (s.byte(), s.byte())))
                else:
                    imports.append((mod, name, "kind%d" % kind, s.uleb()))
        elif sid == 4:
            for _ in range(s.uleb()):
                s.byte()
                tables.append(s.limits())
        elif sid == 5:
            for _ in range(s.uleb()):
                memories.append(s.limits())
        elif sid == 7:
            for _ in range(s.uleb()):
                name, kind, idx = s.name(), s.byte(), s.uleb()
                exports[name] = kind
        del end
    return imports, exports, tables, memories


def main(argv):
    final = "--final" in argv
    listing = "--list" in argv
    paths = [a for a in argv if not a.startswith("--")]
    if len(paths) != 1:
        sys.exit(__doc__)
    imports, exports, tables, memories = parse(open(paths[0], "rb").read())
    errors = []
    for mod, name, kind, desc in imports:
        if listing:
            print("import %s.%s %s %s" % (mod, name, kind, desc))
        if mod not in MODULES or name not in GLUE_IMPORTS or kind != "func":
            errors.append("import %s.%s (%s) is not provided by the loader's glue" % (mod, name, kind))
        elif name in SIGS and desc != SIGS[name]:
            errors.append("import %s.%s has signature %s, the glue serves %s" % (mod, name, desc, SIGS[name]))
    if listing:
        for name in sorted(exports):
            print("export", name)
    need = REQUIRED_EXPORTS + (ASYNCIFY_EXPORTS if final else [])
    errors += ["missing export %s" % e for e in need if e not in exports]
    if not memories or not memories[0][0] & 4:
        errors.append("memory is not 64-bit")
    if final and any(t[0] & 4 for t in tables):
        errors.append("function table is 64-bit (Node 20 cannot load table64)")
    if errors:
        sys.exit("wasm_check: %s:\n  %s" % (paths[0], "\n  ".join(errors)))
    print("wasm_check: %s: %d imports, all from the loader's list; exports ok%s"
          % (paths[0], len(imports), "; table32, asyncify" if final else ""), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
