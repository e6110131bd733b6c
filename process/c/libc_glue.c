/* The C library parts that emscripten implements in JS, mapped onto the imports of the
 * AO loader's glue (emscripten 3.1.59, wasm64), for the musl of Debian's emscripten
 * 3.1.6 that build.sh compiles. Deterministic where the glue is not: the process must
 * compute the same on every compute unit, so time zones are UTC, getenv finds nothing
 * and system() has no shell. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "libc.h"
#include "pthread_impl.h"

#define IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#define AT_FDCWD_GLUE (-100)

/* ------------------------------------------------------------------ process */
IMPORT(_abort_js) __attribute__((noreturn)) void glue_abort(void);
IMPORT(_emscripten_memcpy_js) void glue_memcpy(void *dst, const void *src, size_t n);
IMPORT(emscripten_date_now) double glue_date_now(void);
IMPORT(emscripten_get_now) double glue_get_now(void);
IMPORT(_gmtime_js) void glue_gmtime(int64_t t, struct tm *tm);

_Noreturn void abort(void) { glue_abort(); }

/* emscripten_memcpy.c hands large copies to JS. */
void *emscripten_memcpy_big(void *restrict dst, const void *restrict src, size_t n) {
  glue_memcpy(dst, src, n);
  return dst;
}

char *getenv(const char *name) { (void)name; return NULL; }
int system(const char *cmd) { return cmd ? -1 : 0; }

/* Single-threaded: no locks, one static thread descriptor. */
void __lock(volatile int *l) { (void)l; }
void __unlock(volatile int *l) { (void)l; }
int emscripten_futex_wake(volatile void *addr, int count) { (void)addr; (void)count; return 0; }
static struct pthread main_thread;
uintptr_t __get_tp(void) {
  if (!main_thread.locale) {
    main_thread.self = &main_thread;
    main_thread.locale = &libc.global_locale;
    main_thread.tid = 42;
  }
  return (uintptr_t)&main_thread;
}

/* Soft floating-point environment: round to nearest, no exceptions. */
int __fe_getround(void) { return 0; /* FE_TONEAREST */ }
int __fe_raise_inexact(void) { return 0; }

/* ------------------------------------------------------------------ time (UTC) */
const char __utc[] = "UTC";
long timezone = 0;
int daylight = 0;
char *tzname[2] = {(char *)__utc, (char *)__utc};
void tzset(void) {}

time_t time(time_t *t) {
  time_t now = (time_t)(glue_date_now() / 1000.0);
  if (t) *t = now;
  return now;
}

clock_t clock(void) { return (clock_t)(glue_get_now() * (CLOCKS_PER_SEC / 1000)); }

int __clock_gettime(clockid_t clk, struct timespec *ts) {
  double ms = clk == CLOCK_REALTIME ? glue_date_now() : glue_get_now();
  ts->tv_sec = (time_t)(ms / 1000.0);
  ts->tv_nsec = (long)((ms - (double)ts->tv_sec * 1000.0) * 1000000.0);
  return 0;
}
weak_alias(__clock_gettime, clock_gettime);

struct tm *__gmtime_r(const time_t *restrict t, struct tm *restrict tm) {
  glue_gmtime(*t, tm);
  tm->tm_isdst = 0;
  tm->__tm_gmtoff = 0;
  tm->__tm_zone = __utc;
  return tm;
}
weak_alias(__gmtime_r, gmtime_r);
/* Local time is UTC: the same on every compute unit. */
weak_alias(__gmtime_r, __localtime_r);
weak_alias(__gmtime_r, localtime_r);

static struct tm tm_static;
struct tm *gmtime(const time_t *t) { return __gmtime_r(t, &tm_static); }
struct tm *localtime(const time_t *t) { return __gmtime_r(t, &tm_static); }

/* timegm on a proleptic Gregorian calendar (normalises out-of-range fields). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

time_t timegm(struct tm *tm) {
  int64_t mon = tm->tm_mon, year = (int64_t)tm->tm_year + 1900;
  year += mon / 12;
  mon %= 12;
  if (mon < 0) { mon += 12; year--; }
  int64_t days = days_from_civil(year, mon + 1, 1) + tm->tm_mday - 1;
  int64_t secs = days * 86400 + (int64_t)tm->tm_hour * 3600 + (int64_t)tm->tm_min * 60 + tm->tm_sec;
  time_t t = (time_t)secs;
  __gmtime_r(&t, tm);
  return t;
}
time_t mktime(struct tm *tm) { return timegm(tm); }

/* ------------------------------------------------------------------ syscalls */
IMPORT(__syscall_openat) int glue_openat(int dirfd, const char *path, int flags, void *varargs);
IMPORT(__syscall_fcntl64) int glue_fcntl64(int fd, int cmd, void *varargs);
IMPORT(__syscall_ioctl) int glue_ioctl(int fd, int op, void *varargs);
IMPORT(__syscall_dup3) int glue_dup3(int fd, int newfd, int flags);
IMPORT(__syscall_unlinkat) int glue_unlinkat(int dirfd, const char *path, int flags);
IMPORT(__syscall_rmdir) int glue_rmdir(const char *path);
IMPORT(__syscall_renameat) int glue_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
IMPORT(__syscall_stat64) int glue_stat64(const char *path, void *buf);
IMPORT(__syscall_lstat64) int glue_lstat64(const char *path, void *buf);
IMPORT(__syscall_fstat64) int glue_fstat64(int fd, void *buf);
IMPORT(__syscall_newfstatat) int glue_newfstatat(int dirfd, const char *path, void *buf, int flags);
IMPORT(__syscall_faccessat) int glue_faccessat(int dirfd, const char *path, int amode, int flags);
IMPORT(__syscall_mkdirat) int glue_mkdirat(int dirfd, const char *path, int mode);
IMPORT(__syscall_getcwd) int glue_getcwd(char *buf, size_t size);
IMPORT(__syscall_ftruncate64) int glue_ftruncate64(int fd, int64_t length);

static int glue_dirfd(long fd) { return fd == AT_FDCWD ? AT_FDCWD_GLUE : (int)fd; }

long __aos_sys_openat(long dirfd, long path, long flags, ...) {
  va_list ap;
  va_start(ap, flags);
  long mode = va_arg(ap, long);
  va_end(ap);
  return glue_openat(glue_dirfd(dirfd), (const char *)path, (int)flags, &mode);
}

long __aos_sys_open(long path, long flags, ...) {
  va_list ap;
  va_start(ap, flags);
  long mode = va_arg(ap, long);
  va_end(ap);
  return glue_openat(AT_FDCWD_GLUE, (const char *)path, (int)flags, &mode);
}

long __aos_sys_fcntl64(long fd, long cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  long arg = va_arg(ap, long);
  va_end(ap);
  return glue_fcntl64((int)fd, (int)cmd, &arg);
}

long __aos_sys_ioctl(long fd, long op, ...) {
  va_list ap;
  va_start(ap, op);
  long arg = va_arg(ap, long);
  va_end(ap);
  return glue_ioctl((int)fd, (int)op, &arg);
}

long __aos_sys_dup3(long fd, long newfd, long flags) { return glue_dup3((int)fd, (int)newfd, (int)flags); }
long __aos_sys_unlink(long path) { return glue_unlinkat(AT_FDCWD_GLUE, (const char *)path, 0); }
long __aos_sys_unlinkat(long dirfd, long path, long flags) {
  return glue_unlinkat(glue_dirfd(dirfd), (const char *)path, (int)flags);
}
long __aos_sys_rmdir(long path) { return glue_rmdir((const char *)path); }
long __aos_sys_rename(long oldpath, long newpath) {
  return glue_renameat(AT_FDCWD_GLUE, (const char *)oldpath, AT_FDCWD_GLUE, (const char *)newpath);
}
long __aos_sys_renameat(long olddirfd, long oldpath, long newdirfd, long newpath) {
  return glue_renameat(glue_dirfd(olddirfd), (const char *)oldpath, glue_dirfd(newdirfd), (const char *)newpath);
}
long __aos_sys_access(long path, long amode) { return glue_faccessat(AT_FDCWD_GLUE, (const char *)path, (int)amode, 0); }
long __aos_sys_faccessat(long dirfd, long path, long amode, long flags) {
  return glue_faccessat(glue_dirfd(dirfd), (const char *)path, (int)amode, (int)flags);
}
long __aos_sys_mkdir(long path, long mode) { return glue_mkdirat(AT_FDCWD_GLUE, (const char *)path, (int)mode); }
long __aos_sys_mkdirat(long dirfd, long path, long mode) {
  return glue_mkdirat(glue_dirfd(dirfd), (const char *)path, (int)mode);
}
long __aos_sys_getcwd(long buf, long size) { return glue_getcwd((char *)buf, (size_t)size); }
long __aos_sys_ftruncate64(long fd, long length) { return glue_ftruncate64((int)fd, (int64_t)length); }

/* The 3.1.59 glue's doStat writes its own layout; convert to 3.1.6 musl's struct stat. */
struct glue_stat {
  int32_t dev, mode;
  uint64_t nlink;
  int32_t uid, gid, rdev, pad0;
  int64_t size;
  int32_t blksize, blocks;
  int64_t atime_sec; uint64_t atime_nsec;
  int64_t mtime_sec; uint64_t mtime_nsec;
  int64_t ctime_sec; uint64_t ctime_nsec;
  int64_t ino;
};
_Static_assert(sizeof(struct glue_stat) == 104, "glue stat layout");

static long convert_stat(int ret, const struct glue_stat *g, struct stat *st) {
  if (ret != 0) return ret;
  memset(st, 0, sizeof *st);
  st->st_dev = (dev_t)g->dev;
  st->st_mode = (mode_t)g->mode;
  st->st_nlink = (nlink_t)g->nlink;
  st->st_uid = (uid_t)g->uid;
  st->st_gid = (gid_t)g->gid;
  st->st_rdev = (dev_t)g->rdev;
  st->st_size = (off_t)g->size;
  st->st_blksize = g->blksize;
  st->st_blocks = g->blocks;
  st->st_atim.tv_sec = g->atime_sec; st->st_atim.tv_nsec = (long)g->atime_nsec * 1000;
  st->st_mtim.tv_sec = g->mtime_sec; st->st_mtim.tv_nsec = (long)g->mtime_nsec * 1000;
  st->st_ctim.tv_sec = g->ctime_sec; st->st_ctim.tv_nsec = (long)g->ctime_nsec * 1000;
  st->st_ino = (ino_t)g->ino;
  return 0;
}

long __aos_sys_stat64(long path, long buf) {
  struct glue_stat g;
  return convert_stat(glue_stat64((const char *)path, &g), &g, (struct stat *)buf);
}
long __aos_sys_lstat64(long path, long buf) {
  struct glue_stat g;
  return convert_stat(glue_lstat64((const char *)path, &g), &g, (struct stat *)buf);
}
long __aos_sys_fstat64(long fd, long buf) {
  struct glue_stat g;
  return convert_stat(glue_fstat64((int)fd, &g), &g, (struct stat *)buf);
}
long __aos_sys_fstatat64(long dirfd, long path, long buf, long flags) {
  struct glue_stat g;
  return convert_stat(glue_newfstatat(glue_dirfd(dirfd), (const char *)path, &g, (int)flags), &g,
                      (struct stat *)buf);
}
