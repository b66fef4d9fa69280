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

/* wyhash's: the last 16 bytes (overlapping the previous step), or for
 * shorter input, words built from overlapping 4-byte reads. */
static uint64_t hash(const unsigned char *p, size_t n, uint64_t seed) {
    uint64_t h = seed ^ S0, a, b;
    if (n <= 16) {
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
        size_t left = n;
        while (left > 16) {
            h = mum(r8(p) ^ S1, r8(p + 8) ^ h);
            p += 16;
            left -= 16;
        }
        a = r8(p + left - 16);
        b = r8(p + left - 8);
    }
    return mum(S1 ^ (uint64_t)n, mum(a ^ S1, b ^ h) ^ S2);
}

static PyObject *lines(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view;
    int sep, key;
    if (!PyArg_ParseTuple(args, "y*ii", &view, &sep, &key)) return NULL;
    PyObject *hashes_obj = NULL, *starts_obj = NULL, *result = NULL;
    if (sep < 0 || sep > 255 || key < 0) {
        PyErr_SetString(PyExc_ValueError, "lines: bad separator or key field");
        goto done;
    }
    const unsigned char *data = view.buf;
    Py_ssize_t len = view.len;
    Py_ssize_t count = 0;
    int quoted;
    Py_BEGIN_ALLOW_THREADS /* both passes over the chunk, as the hashing below, without the GIL */
    quoted = memchr(data, '"', (size_t)len) != NULL;
    if (!quoted) {
        for (const unsigned char *q = data; (q = memchr(q, '\n', (size_t)(data + len - q))) != NULL; q++) count++;
        if (len > 0 && data[len - 1] != '\n') count++;
    }
    Py_END_ALLOW_THREADS
    if (quoted) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    hashes_obj = PyBytes_FromStringAndSize(NULL, count * 8);
    starts_obj = PyBytes_FromStringAndSize(NULL, (count + 1) * 8);
    if (hashes_obj == NULL || starts_obj == NULL) goto done;
    uint64_t *hashes = (uint64_t *)PyBytes_AS_STRING(hashes_obj);
    int64_t *starts = (int64_t *)PyBytes_AS_STRING(starts_obj);
    uint64_t sum_a = 0, sum_b = 0;
    int ok = 1;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t s = 0, i = 0;
    while (s < len) {
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
        const unsigned char *stop = memchr(field, sep, (size_t)(end - field));
        size_t width = (size_t)((stop != NULL ? stop : end) - field);
        uint64_t k = hash(field, width, SEED_KEY);
        sum_a += k;
        sum_b += mum(k ^ S2, k ^ S1); /* a second, nonlinear sum: no key set and its sums cancel out lightly */
        starts[i] = s;
        hashes[i++] = hash(data + s, (size_t)(e - s), SEED_LINE);
        s = nl != NULL ? e + 1 : len;
    }
    starts[count] = len;
    Py_END_ALLOW_THREADS
    if (!ok) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    uint64_t sums[2] = {sum_a, sum_b};
    result = Py_BuildValue("(OOy#)", hashes_obj, starts_obj, (const char *)sums, (Py_ssize_t)sizeof sums);
done:
    Py_XDECREF(hashes_obj);
    Py_XDECREF(starts_obj);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"lines", lines, METH_VARARGS, "lines(buf, sep, key) -> (hashes, starts, keysum) as bytes, or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_linehash", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__linehash(void) { return PyModule_Create(&module); }
