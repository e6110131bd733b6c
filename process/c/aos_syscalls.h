/* Force-included (-include) into every musl file by build.sh.
 *
 * Emscripten 3.1.6's musl calls syscalls as `long __syscall_NAME(long, ...)` (i64
 * arguments and results on wasm64); the 3.1.59 glue inside the AO loader names and
 * types them differently (i32 fds/flags/results, the *at variants, another struct stat
 * layout), and an import whose types do not match what the glue's JS returns fails at
 * run time. So musl's calls are renamed to __aos_sys_NAME, implemented in libc_glue.c
 * over the glue's real imports. build.sh's import check catches any syscall left out. */
#ifndef AOS_SYSCALLS_H
#define AOS_SYSCALLS_H
#define __syscall_open      __aos_sys_open
#define __syscall_openat    __aos_sys_openat
#define __syscall_fcntl64   __aos_sys_fcntl64
#define __syscall_ioctl     __aos_sys_ioctl
#define __syscall_dup3      __aos_sys_dup3
#define __syscall_dup       __aos_sys_dup
#define __syscall_unlink    __aos_sys_unlink
#define __syscall_unlinkat  __aos_sys_unlinkat
#define __syscall_rmdir     __aos_sys_rmdir
#define __syscall_rename    __aos_sys_rename
#define __syscall_renameat  __aos_sys_renameat
#define __syscall_stat64    __aos_sys_stat64
#define __syscall_lstat64   __aos_sys_lstat64
#define __syscall_fstat64   __aos_sys_fstat64
#define __syscall_fstatat64 __aos_sys_fstatat64
#define __syscall_access    __aos_sys_access
#define __syscall_faccessat __aos_sys_faccessat
#define __syscall_mkdir     __aos_sys_mkdir
#define __syscall_mkdirat   __aos_sys_mkdirat
#define __syscall_getcwd    __aos_sys_getcwd
#define __syscall_ftruncate64 __aos_sys_ftruncate64
#endif
