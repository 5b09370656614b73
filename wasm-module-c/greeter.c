/*
 * C guest: the greeter ABI of wasm-module1 (see README.md, "The ABI"),
 * in plain C over wasi-libc's allocator.
 *
 *   memory                               the linear memory (exported by wasm-ld)
 *   wasm_allocate(size) -> ptr           64-byte aligned, 0 on failure
 *   wasm_deallocate(ptr) -> 0 | -1       -1 for an unknown or freed pointer
 *   answer() -> 42
 *   wasm_memory_c_format_hello_world(name) -> ptr      NUL-terminated in/out
 *   wasm_memory_rust_format_hello_world(ptr, len) -> pair ptr
 *   wasm_last_error() -> pair ptr        the message of the last failure
 *
 * Every area handed to the host is recorded in a registry (ptr -> size), so
 * freeing an unknown pointer or freeing twice returns -1 and corrupts
 * nothing, and the greeters never read outside an area the host allocated.
 *
 * Build (see scripts/build-guests.sh):
 *   clang --target=wasm32-wasi -mexec-model=reactor -Oz \
 *     -Wl,--gc-sections -Wl,--strip-all greeter.c -o wasm_module_c.wasm
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT(name) __attribute__((export_name(name)))

enum { ALIGN = 64, PAIR_SIZE = 8 };

static const char PREFIX[] = "Hello World, ";
static const char SUFFIX[] = "!";

/* ---- registry of live areas: open addressing, linear probing ---------- */

typedef struct {
    uintptr_t ptr; /* 0 = empty slot */
    uint32_t size; /* bytes the area was requested with */
} Slot;

static Slot *slots;
static uint32_t cap;  /* power of two, or 0 before the first insert */
static uint32_t used;

static uint32_t hash(uintptr_t p) {
    /* Areas are 64-byte aligned: drop the zero bits, then mix. */
    return (uint32_t)((p >> 6) * 2654435761u);
}

static Slot *find(uintptr_t p) {
    if (cap == 0 || p == 0) return NULL;
    for (uint32_t i = hash(p) & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (slots[i].ptr == p) return &slots[i];
        if (slots[i].ptr == 0) return NULL;
    }
}

static void put(Slot s) {
    uint32_t i = hash(s.ptr) & (cap - 1);
    while (slots[i].ptr != 0) i = (i + 1) & (cap - 1);
    slots[i] = s;
    used++;
}

/* Keeps the load factor at most 1/2; 0 if the table cannot grow. */
static int reserve(void) {
    if ((used + 1) * 2 <= cap) return 1;
    uint32_t old_cap = cap, new_cap = cap ? cap * 2 : 64;
    Slot *old = slots, *fresh = calloc(new_cap, sizeof(Slot));
    if (!fresh) return 0;
    slots = fresh;
    cap = new_cap;
    used = 0;
    for (uint32_t i = 0; i < old_cap; i++)
        if (old[i].ptr) put(old[i]);
    free(old);
    return 1;
}

/* Removes a slot, shifting later entries of its cluster back so lookups
 * never stop early (no tombstones). */
static void erase(Slot *s) {
    uint32_t i = (uint32_t)(s - slots);
    for (uint32_t j = (i + 1) & (cap - 1); slots[j].ptr; j = (j + 1) & (cap - 1)) {
        uint32_t home = hash(slots[j].ptr) & (cap - 1);
        /* Move j into the hole at i unless its home lies in (i, j]. */
        if (((j - home) & (cap - 1)) >= ((j - i) & (cap - 1))) {
            slots[i] = slots[j];
            i = j;
        }
    }
    slots[i].ptr = 0;
    used--;
}

/* ---- allocation --------------------------------------------------------- */

static uint8_t *alloc_area(uint32_t size) {
    if (size > INT32_MAX || !reserve()) return NULL;
    /* aligned_alloc wants a multiple of the alignment; an empty request
     * still gets a distinct area so the host can free it. */
    uint32_t rounded = size ? (size + (ALIGN - 1)) & ~(uint32_t)(ALIGN - 1) : ALIGN;
    uint8_t *p = aligned_alloc(ALIGN, rounded);
    if (p) put((Slot){(uintptr_t)p, size});
    return p;
}

EXPORT("wasm_allocate")
int32_t wasm_allocate(int32_t size) {
    return size < 0 ? 0 : (int32_t)(uintptr_t)alloc_area((uint32_t)size);
}

EXPORT("wasm_deallocate")
int32_t wasm_deallocate(int32_t ptr) {
    Slot *s = find((uintptr_t)(uint32_t)ptr);
    if (!s) return -1;
    erase(s);
    free((void *)(uintptr_t)(uint32_t)ptr);
    return 0;
}

/* ---- errors and results ------------------------------------------------- */

static char last_error[160];
static uint32_t last_error_len;

static int32_t fail(const char *msg, int32_t offset) {
    /* "<msg>" or "<msg> at byte <offset>", truncated to the buffer. */
    uint32_t n = (uint32_t)strlen(msg);
    if (n > sizeof last_error - 24) n = sizeof last_error - 24;
    memcpy(last_error, msg, n);
    if (offset >= 0) {
        char digits[12];
        int k = 0;
        do digits[k++] = (char)('0' + offset % 10); while ((offset /= 10) > 0);
        memcpy(last_error + n, " at byte ", 9);
        n += 9;
        while (k > 0) last_error[n++] = digits[--k];
    }
    last_error_len = n;
    return 0;
}

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* A pair area pointing at `payload` (already registered); on failure frees
 * the payload and reports. */
static int32_t give_pair(uint8_t *payload, uint32_t len) {
    uint8_t *pair = alloc_area(PAIR_SIZE);
    if (!pair) {
        wasm_deallocate((int32_t)(uintptr_t)payload);
        return fail("out of memory", -1);
    }
    put_u32(pair, (uint32_t)(uintptr_t)payload);
    put_u32(pair + 4, len);
    return (int32_t)(uintptr_t)pair;
}

EXPORT("wasm_last_error")
int32_t wasm_last_error(void) {
    uint32_t n = last_error_len;
    uint8_t *msg = alloc_area(n);
    if (!msg) return 0;
    memcpy(msg, last_error, n);
    last_error_len = 0;
    return give_pair(msg, n);
}

/* ---- UTF-8 -------------------------------------------------------------- */

/* Offset of the first byte that is not well-formed UTF-8 (no overlongs, no
 * surrogates, nothing above U+10FFFF), or -1 if `s` is valid. */
static int32_t utf8_error(const uint8_t *s, uint32_t n) {
    uint32_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        uint32_t k;
        uint8_t lo = 0x80, hi = 0xBF; /* bounds of the second byte */
        if (c < 0x80) { i++; continue; }
        else if (c >= 0xC2 && c <= 0xDF) k = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else return (int32_t)i;
        if (n - i <= k) return (int32_t)i;
        if (s[i + 1] < lo || s[i + 1] > hi) return (int32_t)i;
        for (uint32_t j = 2; j <= k; j++)
            if ((s[i + j] & 0xC0) != 0x80) return (int32_t)i;
        i += k + 1;
    }
    return -1;
}

/* `Hello World, {name}!`, plus a NUL if `nul`; registered, or NULL. */
static uint8_t *greeting(const uint8_t *name, uint32_t n, int nul, uint32_t *len) {
    if (n > INT32_MAX - 64) return NULL;
    uint32_t total = (uint32_t)(sizeof PREFIX - 1) + n + (uint32_t)(sizeof SUFFIX - 1);
    uint8_t *out = alloc_area(total + (nul ? 1 : 0));
    if (!out) return NULL;
    memcpy(out, PREFIX, sizeof PREFIX - 1);
    memcpy(out + sizeof PREFIX - 1, name, n);
    memcpy(out + sizeof PREFIX - 1 + n, SUFFIX, sizeof SUFFIX - 1);
    if (nul) out[total] = 0;
    *len = total;
    return out;
}

/* ---- the ABI's functions ------------------------------------------------ */

EXPORT("answer")
int32_t answer(void) { return 42; }

EXPORT("wasm_memory_c_format_hello_world")
int32_t wasm_memory_c_format_hello_world(int32_t name) {
    /* The area bounds the search for the NUL: never read past what the
     * host allocated, even if it forgot the terminator. */
    Slot *area = find((uintptr_t)(uint32_t)name);
    if (!area) return fail("name pointer is not a live area", -1);
    const uint8_t *s = (const uint8_t *)area->ptr;
    const uint8_t *nul = memchr(s, 0, area->size);
    if (!nul) return fail("name has no NUL terminator within its area", -1);
    uint32_t n = (uint32_t)(nul - s), len;
    int32_t bad = utf8_error(s, n);
    if (bad >= 0) return fail("name is not UTF-8", bad);
    uint8_t *out = greeting(s, n, 1, &len);
    return out ? (int32_t)(uintptr_t)out : fail("out of memory", -1);
}

EXPORT("wasm_memory_rust_format_hello_world")
int32_t wasm_memory_rust_format_hello_world(int32_t ptr, int32_t len) {
    Slot *area = find((uintptr_t)(uint32_t)ptr);
    if (!area || len < 0 || (uint32_t)len > area->size)
        return fail("name (ptr,len) is not inside a live area", -1);
    const uint8_t *s = (const uint8_t *)area->ptr;
    int32_t bad = utf8_error(s, (uint32_t)len);
    if (bad >= 0) return fail("name is not UTF-8", bad);
    uint32_t n;
    uint8_t *out = greeting(s, (uint32_t)len, 0, &n);
    return out ? give_pair(out, n) : fail("out of memory", -1);
}

/* ---- an export of its own ----------------------------------------------- */

/* `lines words bytes` of the input, as `wc` prints them: the host knows
 * nothing of this export; `wasm-app call --module M word_count` reaches it
 * through the generic pair ABI ((ptr, len) in, pointer to a pair out). */
EXPORT("word_count")
int32_t word_count(int32_t ptr, int32_t len) {
    Slot *area = find((uintptr_t)(uint32_t)ptr);
    if (len < 0 || (len > 0 && (!area || (uint32_t)len > area->size)))
        return fail("input (ptr,len) is not inside a live area", -1);
    const uint8_t *s = len > 0 ? (const uint8_t *)area->ptr : (const uint8_t *)"";
    uint32_t lines = 0, words = 0;
    int in_word = 0;
    for (int32_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        int space = c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
        if (c == '\n') lines++;
        if (!space && !in_word) words++;
        in_word = !space;
    }
    uint32_t counts[3] = {lines, words, (uint32_t)len};
    uint8_t *out = alloc_area(3 * 11);
    if (!out) return fail("out of memory", -1);
    uint32_t n = 0;
    for (int k = 0; k < 3; k++) {
        char digits[10];
        int d = 0;
        uint32_t v = counts[k];
        do digits[d++] = (char)('0' + v % 10); while ((v /= 10) > 0);
        while (d > 0) out[n++] = (uint8_t)digits[--d];
        out[n++] = k < 2 ? ' ' : '\n';
    }
    return give_pair(out, n);
}
