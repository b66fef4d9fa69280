/* Per-line hashes of a raw chunk of delimited text (lepton/data/linehash.py).
 *
 * lines(buf, sep, key) -> (hashes, starts, keysum) or None
 *   hashes: one 64-bit hash per line (the line without its '\n');
 *   starts: the n + 1 line offsets (line i is buf[starts[i]:starts[i + 1]]);
 *   keysum: two sums (mod 2^64) over every line's key field text: of its
 *           hash, and of a second function of that hash: a hash of the
 *           multiset of the key texts.
 * None when a line is empty, holds a quote, or has no field number ``key``:
 * the caller then parses the chunk as a whole.
 *
 * The hash is wyhash's core (Wang Yi, public domain): 16 bytes a step, each
 * step one 64x64->128-bit multiply folded to 64 bits, the length mixed in
 * at the end.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define S0 0xa0761d6478bd642fULL
#define S1 0xe7037ed1a0b428dbULL
#define S2 0x8ebc6af09c88c6e3ULL
#define SEED_LINE 0x589965cc75374cc3ULL
#define SEED_KEY 0x1d8e4e27c47d124fULL

static inline uint64_t mum(uint64_t a, uint64_t b) {
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define LE64(x) __builtin_bswap64(x)
#define LE32(x) __builtin_bswap32(x)
#else
#define LE64(x) (x)
#define LE32(x) (x)
#endif

static inline uint64_t r8(const unsigned char *p) {
    uint64_t x;
    memcpy(&x, p, 8);
    return LE64(x);
}

static inline uint64_t r4(const unsigned char *p) {
    uint32_t x;
    memcpy(&x, p, 4);
    return LE32(x);
}

#define QUOTES 0x2222222222222222ULL
#define LOWS 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Whether the 8 bytes of w hold a '"' (exact: no false positives). */
static inline int has_quote(uint64_t w) {
    uint64_t y = w ^ QUOTES;
    return ((y - LOWS) & ~y & HIGHS) != 0;
}

/* wyhash's: the last 16 bytes (overlapping the previous step), or for
 * shorter input, words built from overlapping 4-byte reads. With
 * ``quoted``, also whether the input holds a '"', in the same reads: the
 * 16-byte steps and the last 16 bytes cover every byte of input longer
 * than 16; shorter input is searched. (Inlined: without ``quoted`` the
 * compiler drops the scan.) */
static inline uint64_t scan_hash(const unsigned char *p, size_t n, uint64_t seed, int *quoted) {
    uint64_t h = seed ^ S0, a, b;
    if (n <= 16) {
        if (quoted != NULL) *quoted |= memchr(p, '"', n) != NULL;
        if (n >= 4) {
            size_t m = (n >> 3) << 2;
            a = (r4(p) << 32) | r4(p + m);
            b = (r4(p + n - 4) << 32) | r4(p + n - 4 - m);
        } else if (n > 0) {
            a = ((uint64_t)p[0] << 16) | ((uint64_t)p[n >> 1] << 8) | p[n - 1];
            b = 0;
        } else {
            a = b = 0;
        }
    } else {
        uint64_t q = 0;
        size_t left = n;
        while (left > 16) {
            uint64_t w0 = r8(p), w1 = r8(p + 8);
            if (quoted != NULL) q |= has_quote(w0) | has_quote(w1);
            h = mum(w0 ^ S1, w1 ^ h);
            p += 16;
            left -= 16;
        }
        a = r8(p + left - 16);
        b = r8(p + left - 8);
        if (quoted != NULL) *quoted |= (int)(q | has_quote(a) | has_quote(b));
    }
    return mum(S1 ^ (uint64_t)n, mum(a ^ S1, b ^ h) ^ S2);
}

static uint64_t hash(const unsigned char *p, size_t n, uint64_t seed) { return scan_hash(p, n, seed, NULL); }

/* Room for one more line in the two arrays (malloc'd, grown by doubling). */
static int grow(uint64_t **hashes, int64_t **starts, Py_ssize_t *cap) {
    Py_ssize_t more = *cap * 2;
    uint64_t *h = realloc(*hashes, (size_t)more * sizeof **hashes);
    if (h == NULL) return 0;
    *hashes = h;
    int64_t *s = realloc(*starts, (size_t)(more + 1) * sizeof **starts);
    if (s == NULL) return 0;
    *starts = s;
    *cap = more;
    return 1;
}

/* One pass over the chunk, without the GIL: each line's end (memchr), its
 * key field, its hash and whether it holds a quote. The arrays start at a
 * guess of the line count (lines of ~64 bytes or more: one allocation for
 * the benchmark's tables) and double when it falls short. */
static PyObject *lines(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view;
    int sep, key;
    if (!PyArg_ParseTuple(args, "y*ii", &view, &sep, &key)) return NULL;
    PyObject *result = NULL;
    if (sep < 0 || sep > 255 || key < 0) {
        PyErr_SetString(PyExc_ValueError, "lines: bad separator or key field");
        PyBuffer_Release(&view);
        return NULL;
    }
    const unsigned char *data = view.buf;
    Py_ssize_t len = view.len;
    Py_ssize_t cap = len / 64 + 16, count = 0;
    uint64_t *hashes = malloc((size_t)cap * sizeof *hashes);
    int64_t *starts = malloc((size_t)(cap + 1) * sizeof *starts);
    uint64_t sum_a = 0, sum_b = 0;
    int ok = hashes != NULL && starts != NULL, nomem = !ok, quoted = 0;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t s = 0;
    while (ok && s < len) {
        const unsigned char *nl = memchr(data + s, '\n', (size_t)(len - s));
        Py_ssize_t e = nl != NULL ? nl - data : len; /* the line's end, its '\n' excluded */
        if (e == s || (e == s + 1 && data[s] == '\r')) {
            ok = 0; /* an empty line: not a row */
            break;
        }
        const unsigned char *field = data + s, *end = data + e;
        for (int k = 0; k < key && field != NULL; k++) {
            const unsigned char *c = memchr(field, sep, (size_t)(end - field));
            field = c != NULL ? c + 1 : NULL;
        }
        if (field == NULL) {
            ok = 0;
            break;
        }
        if (count == cap && !grow(&hashes, &starts, &cap)) {
            ok = 0;
            nomem = 1;
            break;
        }
        const unsigned char *stop = memchr(field, sep, (size_t)(end - field));
        size_t width = (size_t)((stop != NULL ? stop : end) - field);
        uint64_t k = hash(field, width, SEED_KEY);
        sum_a += k;
        sum_b += mum(k ^ S2, k ^ S1); /* a second, nonlinear sum: no key set and its sums cancel out lightly */
        starts[count] = s;
        hashes[count++] = scan_hash(data + s, (size_t)(e - s), SEED_LINE, &quoted);
        if (quoted) {
            ok = 0; /* a quoted value may hold a separator or a newline */
            break;
        }
        s = nl != NULL ? e + 1 : len;
    }
    if (ok) starts[count] = len;
    Py_END_ALLOW_THREADS
    if (nomem) {
        PyErr_NoMemory();
    } else if (!ok) {
        result = Py_NewRef(Py_None);
    } else {
        uint64_t sums[2] = {sum_a, sum_b};
        result = Py_BuildValue("(y#y#y#)", (const char *)hashes, count * (Py_ssize_t)sizeof *hashes,
                               (const char *)starts, (count + 1) * (Py_ssize_t)sizeof *starts,
                               (const char *)sums, (Py_ssize_t)sizeof sums);
    }
    free(hashes);
    free(starts);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"lines", lines, METH_VARARGS, "lines(buf, sep, key) -> (hashes, starts, keysum) as bytes, or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_linehash", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__linehash(void) { return PyModule_Create(&module); }
