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

/* cuts(buf, base, end, eof, sep, avg, per_byte) -> (ends, boundaries): the
 * exclusive ends of the lines of buf[base:end] (with eof, the last line
 * without its newline too) and those after which a chunk may end, as bytes
 * of native int64. sep: -1 for none. */
static PyObject *cuts(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view;
    Py_ssize_t base, end, avg;
    int eof, sep;
    unsigned long long per_byte;
    if (!PyArg_ParseTuple(args, "y*nnpinK", &view, &base, &end, &eof, &sep, &avg, &per_byte)) return NULL;
    PyObject *ends_obj = NULL, *bounds_obj = NULL, *result = NULL;
    if (base < 0 || end < base || end > view.len || sep > 255 || avg <= 0) {
        PyErr_SetString(PyExc_ValueError, "cuts: bad range or arguments");
        goto done;
    }
    const unsigned char *data = view.buf;
    Py_ssize_t count = 0;
    for (const unsigned char *q = data + base; (q = memchr(q, '\n', (size_t)(data + end - q))) != NULL; q++)
        count++;
    Py_ssize_t cap = count + 1;
    ends_obj = PyBytes_FromStringAndSize(NULL, cap * 8);
    bounds_obj = PyBytes_FromStringAndSize(NULL, cap * 8);
    if (ends_obj == NULL || bounds_obj == NULL) goto done;
    int64_t *ends = (int64_t *)PyBytes_AS_STRING(ends_obj), *bounds = (int64_t *)PyBytes_AS_STRING(bounds_obj);
    Py_ssize_t n = 0, b = 0;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t s = base;
    while (s < end) {
        const unsigned char *nl = memchr(data + s, '\n', (size_t)(end - s));
        Py_ssize_t e;
        if (nl != NULL) {
            e = nl - data + 1;
        } else if (eof) {
            e = end;
        } else {
            break;
        }
        ends[n++] = e;
        Py_ssize_t length = e - s < avg ? e - s : avg;
        if (line_hash(data, s, e, sep) < (uint64_t)length * per_byte) bounds[b++] = e;
        s = e;
    }
    Py_END_ALLOW_THREADS
    if (_PyBytes_Resize(&ends_obj, n * 8) < 0 || _PyBytes_Resize(&bounds_obj, b * 8) < 0) goto done;
    result = PyTuple_Pack(2, ends_obj, bounds_obj);
done:
    Py_XDECREF(ends_obj);
    Py_XDECREF(bounds_obj);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"cuts", cuts, METH_VARARGS,
     "cuts(buf, base, end, eof, sep, avg, per_byte) -> (ends, boundaries) as int64 bytes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_linecuts", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__linecuts(void) { return PyModule_Create(&module); }
