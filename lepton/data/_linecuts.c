/* The first-field cut rule of lepton/data/linecuts.py (_Lines), one pass in C.
 *
 * For each line of buf[base:end]: its first PREFIX (16) bytes, bytes past
 * the line's end replaced by its last byte; with a separator, every byte
 * from the first separator on zeroed; the two little-endian words mixed
 * (w0 * ODD ^ w1, murmur3's finaliser); a boundary after the line when the
 * hash is below min(length, avg) * per_byte. The numpy version does the same
 * with ~20 array passes and costs ~20 ns a line; this ~2 ns.
 * tests/test_linecuts.py compares the two on random input.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX 16
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
#define ODD 0x9E3779B97F4A7C15ULL

static inline uint64_t mix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ULL;
    return h ^ (h >> 33);
}

static inline uint64_t load_le(const unsigned char *b) {
    uint64_t x = 0;
    for (int k = 7; k >= 0; k--) x = (x << 8) | b[k];
    return x;
}

/* The line's hash: its prefix words, cut at the separator (sep < 0: none). */
static inline uint64_t line_hash(const unsigned char *data, Py_ssize_t s, Py_ssize_t e, int sep) {
    unsigned char prefix[PREFIX];
    if (e - s >= PREFIX) {
        memcpy(prefix, data + s, PREFIX);
    } else {
        for (Py_ssize_t k = 0; k < PREFIX; k++) prefix[k] = data[s + k < e ? s + k : e - 1];
    }
    uint64_t w[2] = {load_le(prefix), load_le(prefix + 8)};
    if (sep >= 0) {
        uint64_t pattern = (uint64_t)sep * ONES;
        int open = 1;
        for (int i = 0; i < 2; i++) {
            uint64_t y = w[i] ^ pattern;
            uint64_t t = (y - ONES) & ~y & HIGHS; /* lowest set bit: 8k+7 for the first sep at byte k */
            uint64_t keep = ((t & (~t + 1)) >> 7) - 1;
            w[i] = open ? (w[i] & keep) : 0;
            open = open && t == 0;
        }
    }
    return mix(w[0] * ODD ^ w[1]);
}

/* The exclusive end of the line that starts at s in data[:end] (with eof,
 * the last line without its newline too); -1 where no whole line is left. */
static inline Py_ssize_t line_end(const unsigned char *data, Py_ssize_t s, Py_ssize_t end, int eof) {
    const unsigned char *nl = memchr(data + s, '\n', (size_t)(end - s));
    return nl != NULL ? nl - data + 1 : eof ? end : -1;
}

/* Whether a chunk may end after the line data[s:e]. */
static inline int may_cut(const unsigned char *data, Py_ssize_t s, Py_ssize_t e, int sep, Py_ssize_t avg,
                          unsigned long long per_byte) {
    Py_ssize_t length = e - s < avg ? e - s : avg;
    return line_hash(data, s, e, sep) < (uint64_t)length * per_byte;
}

/* boundaries(buf, base, end, eof, sep, avg, per_byte) -> the exclusive
 * ends of the lines of buf[base:end] (with eof, the last line without its
 * newline too) after which a chunk may end, as bytes of native int64.
 * sep: -1 for none. All of it without the GIL, and no array of every line
 * end (~5 MB a 64 MiB block, fresh memory each time). */
static PyObject *boundaries(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view;
    Py_ssize_t base, end, avg;
    int eof, sep;
    unsigned long long per_byte;
    if (!PyArg_ParseTuple(args, "y*nnpinK", &view, &base, &end, &eof, &sep, &avg, &per_byte)) return NULL;
    if (base < 0 || end < base || end > view.len || sep > 255 || avg <= 0) {
        PyErr_SetString(PyExc_ValueError, "boundaries: bad range or arguments");
        PyBuffer_Release(&view);
        return NULL;
    }
    PyObject *result = NULL;
    const unsigned char *data = view.buf;
    int64_t *out = NULL;
    Py_ssize_t n = 0, cap = 0;
    int nomem = 0;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t e;
    for (Py_ssize_t s = base; s < end && (e = line_end(data, s, end, eof)) >= 0; s = e) {
        if (may_cut(data, s, e, sep, avg, per_byte)) {
            if (n == cap) {
                Py_ssize_t more = cap ? 2 * cap : 256;
                int64_t *grown = realloc(out, (size_t)more * sizeof *out);
                if (grown == NULL) {
                    nomem = 1;
                    break;
                }
                out = grown;
                cap = more;
            }
            out[n++] = e;
        }
    }
    Py_END_ALLOW_THREADS
    if (nomem) {
        PyErr_NoMemory();
    } else {
        result = PyBytes_FromStringAndSize((const char *)out, n * 8);
    }
    free(out);
    PyBuffer_Release(&view);
    return result;
}

/* copy(dst, src) -> None: src's bytes to the start of dst, without the GIL. */
static PyObject *copy(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer dst, src;
    if (!PyArg_ParseTuple(args, "w*y*", &dst, &src)) return NULL;
    PyObject *result = NULL;
    if (src.len > dst.len) {
        PyErr_SetString(PyExc_ValueError, "copy: the destination is too small");
    } else {
        Py_BEGIN_ALLOW_THREADS
        memcpy(dst.buf, src.buf, (size_t)src.len);
        Py_END_ALLOW_THREADS
        result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&dst);
    PyBuffer_Release(&src);
    return result;
}

/* count(buf, byte) -> how many times ``byte`` occurs in buf, without the GIL and without a copy. */
static PyObject *count(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view;
    int byte;
    if (!PyArg_ParseTuple(args, "y*i", &view, &byte)) return NULL;
    if (byte < 0 || byte > 255) {
        PyErr_SetString(PyExc_ValueError, "count: not a byte");
        PyBuffer_Release(&view);
        return NULL;
    }
    Py_ssize_t n = 0;
    const unsigned char *p = view.buf, *end = p + view.len;
    Py_BEGIN_ALLOW_THREADS
    while (p < end && (p = memchr(p, byte, (size_t)(end - p))) != NULL) {
        n++;
        p++;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(n);
}

static PyMethodDef methods[] = {
    {"boundaries", boundaries, METH_VARARGS,
     "boundaries(buf, base, end, eof, sep, avg, per_byte) -> boundaries as int64 bytes"},
    {"copy", copy, METH_VARARGS, "copy(dst, src): src's bytes to the start of dst, without the GIL"},
    {"count", count, METH_VARARGS, "count(buf, byte) -> occurrences of byte in buf, without the GIL"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_linecuts", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__linecuts(void) { return PyModule_Create(&module); }
