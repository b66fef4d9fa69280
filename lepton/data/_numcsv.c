/* A parser for the plainest delimited text: every column int64 or float64,
 * no quotes, no empty fields, no exponents. It returns None for anything
 * else, and the caller parses those bytes with pyarrow; where it returns
 * values they are the ones pyarrow gives (tests/test_numcsv.py compares the
 * two on random input).
 *
 * Floats are exact: a decimal with at most 19 significant digits, a
 * mantissa m <= 2^53 and k <= 22 digits after the point is m / 10^k, both
 * operands exact doubles, so IEEE division rounds it correctly, as
 * pyarrow's parser does. Other decimals are left to pyarrow.
 *
 * Why: pyarrow's CSV reader costs ~8 s of CPU per GiB of such a table on the
 * benchmark machine; this costs ~1 s. It runs without the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static const double POW10[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

#define MAX_COLS 4096
#define EXACT (UINT64_C(1) << 53)

static inline int is_digit(char c) { return (unsigned char)(c - '0') < 10; }

static const uint64_t POW10I[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && defined(__GNUC__)
#define SWAR 1
/* The value of 8 ASCII digits, the first in the lowest byte (zero bytes
 * count as leading zeros). Lemire, "Fast conversion of 8 digits". */
static inline uint64_t eight(uint64_t v) {
    v = ((v & 0x0F0F0F0F0F0F0F0FULL) * 2561) >> 8;
    v = ((v & 0x00FF00FF00FF00FFULL) * 6553601) >> 16;
    return ((v & 0x0000FFFF0000FFFFULL) * 42949672960001ULL) >> 32;
}
#endif

/* Reads the run of digits at *pp into *acc (acc * 10^n + run; exact while
 * the caller keeps to 19 digits in all) and returns its length n. */
static inline Py_ssize_t digits(const char **pp, const char *end, uint64_t *acc) {
    const char *p = *pp;
    uint64_t m = *acc;
    Py_ssize_t n = 0;
#ifdef SWAR
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t t = x ^ 0x3030303030303030ULL;
        /* high bit of a byte set where it is not a digit; a carry only ever
         * reaches later bytes, so the first such byte is found right */
        uint64_t bad = ((t + 0x7676767676767676ULL) | t) & 0x8080808080808080ULL;
        int d = bad ? __builtin_ctzll(bad) >> 3 : 8;
        if (d) m = m * POW10I[d] + eight(d == 8 ? x : x << (8 * (8 - d)));
        p += d;
        n += d;
        if (d < 8) goto out;
    }
#endif
    while (p < end && is_digit(*p)) {
        m = m * 10 + (uint64_t)(*p++ - '0');
        n++;
    }
#ifdef SWAR
out:
#endif
    *pp = p;
    *acc = m;
    return n;
}

/* Parses whole rows of ``p[0:n]`` into ``out[c]`` (int64 or double each,
 * room for ``cap`` rows). Returns the number of rows, or -1 where pyarrow
 * must decide. */
static Py_ssize_t parse_rows(const char *p, const char *end, const char *kinds, Py_ssize_t ncols,
                             char sep, char **out, Py_ssize_t cap) {
    Py_ssize_t row = 0;
    if (p == end) return -1; /* pyarrow: "Empty CSV file" */
    while (p < end) {
        if (row >= cap) return -1;
        for (Py_ssize_t c = 0; c < ncols; c++) {
            int neg = 0;
            if (p < end && *p == '-') {
                neg = 1;
                p++;
            }
            const char *s = p;
            uint64_t m = 0;
            Py_ssize_t whole = digits(&p, end, &m);
            if (kinds[c] == 'i') {
                if (whole == 0 || whole > 18) return -1;
                if (whole > 1 && *s == '0') return -1; /* leading zeros: left to pyarrow */
                ((int64_t *)out[c])[row] = neg ? -(int64_t)m : (int64_t)m;
            } else {
                Py_ssize_t k = 0;
                if (p < end && *p == '.') {
                    p++;
                    k = digits(&p, end, &m);
                    if (k == 0) return -1; /* "1.": left to pyarrow */
                }
                if (whole == 0 || whole + k > 19 || k > 22 || m > EXACT) return -1;
                double v = (double)m / POW10[k];
                ((double *)out[c])[row] = neg ? -v : v;
            }
            if (c + 1 < ncols) {
                if (p >= end || *p != sep) return -1;
                p++;
            }
        }
        if (p < end) {
            if (*p == '\r') {
                if (p + 1 >= end || p[1] != '\n') return -1;
                p++;
            }
            if (*p != '\n') return -1;
            p++;
        }
        row++;
    }
    return row;
}

static PyObject *parse(PyObject *self, PyObject *args) {
    Py_buffer raw;
    int sep;
    const char *kinds;
    Py_ssize_t ncols;
    if (!PyArg_ParseTuple(args, "y*Cs#", &raw, &sep, &kinds, &ncols)) return NULL;
    PyObject *result = NULL, *columns = NULL;
    char *out[MAX_COLS];
    if (ncols < 1 || ncols > MAX_COLS || sep > 127 || sep == '"' || sep == '\n' || sep == '\r' ||
        sep == '-' || sep == '.' || is_digit((char)sep)) {
        PyErr_SetString(PyExc_ValueError, "unsupported columns or separator");
        goto done;
    }
    for (Py_ssize_t c = 0; c < ncols; c++) {
        if (kinds[c] != 'i' && kinds[c] != 'f') {
            PyErr_SetString(PyExc_ValueError, "kinds: 'i' (int64) or 'f' (float64) per column");
            goto done;
        }
    }
    const char *p = raw.buf, *end = p + raw.len;
    Py_ssize_t cap = 1;
    for (const char *q = p; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++) cap++;
    columns = PyList_New(ncols);
    if (columns == NULL) goto done;
    for (Py_ssize_t c = 0; c < ncols; c++) {
        PyObject *b = PyByteArray_FromStringAndSize(NULL, cap * 8);
        if (b == NULL) goto done;
        PyList_SET_ITEM(columns, c, b);
        out[c] = PyByteArray_AS_STRING(b);
    }
    Py_ssize_t rows;
    Py_BEGIN_ALLOW_THREADS
    rows = parse_rows(p, end, kinds, ncols, (char)sep, out, cap);
    Py_END_ALLOW_THREADS
    if (rows < 0) {
        result = Py_NewRef(Py_None);
    } else {
        result = Py_BuildValue("nO", rows, columns);
    }
done:
    Py_XDECREF(columns);
    PyBuffer_Release(&raw);
    return result;
}

static PyMethodDef methods[] = {
    {"parse", parse, METH_VARARGS,
     "parse(raw, sep, kinds) -> (rows, [bytearray per column]) | None\n\n"
     "kinds: one letter per column, 'i' int64 or 'f' float64. Each bytearray\n"
     "holds at least rows native 8-byte values. None: pyarrow must parse it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_numcsv", NULL, -1, methods};

PyMODINIT_FUNC PyInit__numcsv(void) { return PyModule_Create(&module); }
