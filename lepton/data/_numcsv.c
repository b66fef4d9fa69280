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
 *
 * A float column may instead be asked for as decimals ('d'): its values come
 * out as int64 numerators m of m / 10^scale, one scale for the column (the
 * least that holds every value: lepton/data/decimals.py, which stores them
 * so), with no division at all (a third of the time of parsing such a
 * column went to it). Where no scale holds them all (a -0, a numerator past
 * 2^53 once scaled, more than 15 digits after the point), the column comes
 * out as float64 as with 'f'.
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
#define MAX_SCALE 15 /* as lepton/data/decimals.py */
#define AGAIN (-2)   /* parse_rows: a 'd' column cannot be decimals here; ask again with 'f' */

static inline int is_digit(char c) { return (unsigned char)(c - '0') < 10; }

/* 10^0 .. 10^19: every power of ten a uint64 holds (digits, scales, the formatter) */
static const uint64_t P10[20] = {
    1ULL,
    10ULL,
    100ULL,
    1000ULL,
    10000ULL,
    100000ULL,
    1000000ULL,
    10000000ULL,
    100000000ULL,
    1000000000ULL,
    10000000000ULL,
    100000000000ULL,
    1000000000000ULL,
    10000000000000ULL,
    100000000000000ULL,
    1000000000000000ULL,
    10000000000000000ULL,
    100000000000000000ULL,
    1000000000000000000ULL,
    10000000000000000000ULL,
};

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
        if (d) m = m * P10[d] + eight(d == 8 ? x : x << (8 * (8 - d)));
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

/* A 'd' column's numerators so far (``rows`` of them, at ``scale``) at the
 * larger scale ``to``; 0 where one would pass 2^53. */
static int rescale(int64_t *m, Py_ssize_t rows, int scale, int to) {
    uint64_t f = P10[to - scale], most = EXACT / f;
    for (Py_ssize_t i = 0; i < rows; i++) {
        if ((uint64_t)(m[i] < 0 ? -m[i] : m[i]) > most) return 0;
        m[i] *= (int64_t)f;
    }
    return 1;
}

/* Parses whole rows of ``p[0:n]`` into ``out[c]`` (int64 or double each,
 * room for ``cap`` rows; a 'd' column's numerators at ``scale[c]``, the
 * most digits after the point of any of its values, the others scaled up
 * to it). Returns the number of rows; -1 where pyarrow must decide; AGAIN
 * where a 'd' column holds a -0 or a value that would pass 2^53 scaled. */
static Py_ssize_t parse_rows(const char *p, const char *end, const char *kinds, Py_ssize_t ncols,
                             char sep, char **out, int *scale, Py_ssize_t cap) {
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
                if (kinds[c] == 'd') {
                    int have = row ? scale[c] : (int)k;
                    if (k != have) { /* rare: not the column's number of digits after the point */
                        if (k > MAX_SCALE) return AGAIN;
                        if (k < have) {
                            if (m > EXACT / P10[have - k]) return AGAIN;
                            m *= P10[have - k];
                        } else {
                            if (!rescale((int64_t *)out[c], row, have, (int)k)) return AGAIN;
                            have = (int)k;
                        }
                    }
                    if (neg && m == 0) return AGAIN; /* -0: a numerator has no sign */
                    scale[c] = have;
                    ((int64_t *)out[c])[row] = neg ? -(int64_t)m : (int64_t)m;
                } else {
                    double v = (double)m / POW10[k];
                    ((double *)out[c])[row] = neg ? -v : v;
                }
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

/* A 'd' column of ``rows`` numerators at ``scale``: its scale once at the
 * least that holds every value (its numerators divided down to it); or -1,
 * its values made doubles in place (as 'f' gives them: m / 10^scale is the
 * value its text says, both operands exact, so it rounds the same way). */
static int settle(int64_t *m, Py_ssize_t rows, int scale) {
    if (scale > MAX_SCALE) {
        double *v = (double *)m;
        for (Py_ssize_t i = 0; i < rows; i++) v[i] = (double)m[i] / POW10[scale];
        return -1;
    }
    /* while every numerator ends in 0 (the first that does not, usually the
     * first, ends the look) */
    while (scale > 0) {
        Py_ssize_t i = 0;
        while (i < rows && m[i] % 10 == 0) i++;
        if (i < rows) break;
        for (i = 0; i < rows; i++) m[i] /= 10;
        scale--;
    }
    return scale;
}

static PyObject *parse(PyObject *self, PyObject *args) {
    Py_buffer raw;
    int sep;
    const char *kinds;
    Py_ssize_t ncols;
    if (!PyArg_ParseTuple(args, "y*Cs#", &raw, &sep, &kinds, &ncols)) return NULL;
    PyObject *result = NULL, *columns = NULL, *scales = NULL;
    char *out[MAX_COLS];
    int scale[MAX_COLS];
    if (ncols < 1 || ncols > MAX_COLS || sep > 127 || sep == '"' || sep == '\n' || sep == '\r' ||
        sep == '-' || sep == '.' || is_digit((char)sep)) {
        PyErr_SetString(PyExc_ValueError, "unsupported columns or separator");
        goto done;
    }
    for (Py_ssize_t c = 0; c < ncols; c++) {
        if (kinds[c] != 'i' && kinds[c] != 'f' && kinds[c] != 'd') {
            PyErr_SetString(PyExc_ValueError, "kinds: 'i' (int64), 'f' or 'd' (float64) per column");
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
    rows = parse_rows(p, end, kinds, ncols, (char)sep, out, scale, cap);
    if (rows == AGAIN) { /* the decimals as floats: a second parse, rare */
        char plain[MAX_COLS];
        for (Py_ssize_t c = 0; c < ncols; c++) plain[c] = kinds[c] == 'd' ? 'f' : kinds[c];
        rows = parse_rows(p, end, plain, ncols, (char)sep, out, scale, cap);
        for (Py_ssize_t c = 0; c < ncols; c++) scale[c] = -1;
    } else {
        for (Py_ssize_t c = 0; c < ncols && rows >= 0; c++)
            scale[c] = kinds[c] == 'd' ? settle((int64_t *)out[c], rows, scale[c]) : -1;
    }
    Py_END_ALLOW_THREADS
    if (rows < 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    scales = PyTuple_New(ncols);
    if (scales == NULL) goto done;
    for (Py_ssize_t c = 0; c < ncols; c++) {
        PyObject *s = PyLong_FromLong(scale[c]);
        if (s == NULL) goto done;
        PyTuple_SET_ITEM(scales, c, s);
    }
    result = Py_BuildValue("nOO", rows, columns, scales);
done:
    Py_XDECREF(scales);
    Py_XDECREF(columns);
    PyBuffer_Release(&raw);
    return result;
}

static const char PAIRS[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* The number of decimal digits of v (1 for 0). */
static inline int ndigits(uint64_t v) {
    int t = ((64 - __builtin_clzll(v | 1)) * 1233) >> 12; /* bits * log10(2): the digits, or one more */
    return v ? t + 1 - (v < P10[t]) : 1;
}

/* Writes the digits of v so that they end just before ``end`` (no calls:
 * the lengths vary, and a memcpy of a few bytes each cost more than the rest). */
static inline void put_digits(uint64_t v, char *end) {
    while (v >= 100) {
        uint64_t r = v % 100;
        v /= 100;
        end -= 2;
        end[0] = PAIRS[2 * r];
        end[1] = PAIRS[2 * r + 1];
    }
    if (v >= 10) {
        end[-2] = PAIRS[2 * v];
        end[-1] = PAIRS[2 * v + 1];
    } else {
        end[-1] = (char)('0' + v);
    }
}

/* m / 10^scale in decimal, with ``scale`` digits after the point, at ``q``;
 * returns the end. */
static inline char *decimal(int64_t m, int scale, char *q) {
    uint64_t a = m < 0 ? (uint64_t)0 - (uint64_t)m : (uint64_t)m;
    if (m < 0) *q++ = '-';
    int n = ndigits(a);
    if (scale == 0) {
        put_digits(a, q + n);
        return q + n;
    }
    if (n <= scale) { /* 0.00ddd */
        *q++ = '0';
        *q++ = '.';
        for (int i = n; i < scale; i++) *q++ = '0';
        put_digits(a, q + n);
        return q + n;
    }
    put_digits(a, q + 1 + n); /* one further on, then the whole part back over the gap */
    for (int i = 0; i < n - scale; i++) q[i] = q[i + 1];
    q[n - scale] = '.';
    return q + n + 1;
}

static PyObject *format(PyObject *self, PyObject *args) {
    PyObject *columns, *scales;
    int sep;
    Py_ssize_t rows;
    if (!PyArg_ParseTuple(args, "OOCn", &columns, &scales, &sep, &rows)) return NULL;
    if (!PyList_Check(columns) || !PyTuple_Check(scales) || PyList_GET_SIZE(columns) != PyTuple_GET_SIZE(scales) ||
        PyList_GET_SIZE(columns) < 1 || PyList_GET_SIZE(columns) > MAX_COLS || rows < 0 || sep > 127) {
        PyErr_SetString(PyExc_ValueError, "format(columns: list, scales: tuple of as many, sep, rows)");
        return NULL;
    }
    Py_ssize_t ncols = PyList_GET_SIZE(columns), got = 0;
    Py_buffer views[MAX_COLS];
    const int64_t *col[MAX_COLS];
    int scale[MAX_COLS];
    PyObject *out = NULL;
    for (; got < ncols; got++) {
        long sc = PyLong_AsLong(PyTuple_GET_ITEM(scales, got));
        if (sc == -1 && PyErr_Occurred()) goto done;
        if (sc < 0 || sc > MAX_SCALE) {
            PyErr_SetString(PyExc_ValueError, "scales: 0 to 15 (0: integers)");
            goto done;
        }
        scale[got] = (int)sc;
        if (PyObject_GetBuffer(PyList_GET_ITEM(columns, got), &views[got], PyBUF_SIMPLE) < 0) goto done;
        if (views[got].len < rows * 8) {
            PyBuffer_Release(&views[got]);
            PyErr_SetString(PyExc_ValueError, "a column holds fewer than rows int64 values");
            goto done;
        }
        col[got] = views[got].buf;
    }
    /* at most a sign, 19 digits, a point and 15 zeros after it, and a separator, a value */
    out = PyBytes_FromStringAndSize(NULL, rows * ncols * 37 + 1);
    if (out == NULL) goto done;
    char *q = PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < rows; r++) {
        for (Py_ssize_t c = 0; c < ncols; c++) {
            q = decimal(col[c][r], scale[c], q);
            *q++ = c + 1 < ncols ? (char)sep : '\n';
        }
    }
    Py_END_ALLOW_THREADS
    if (_PyBytes_Resize(&out, q - PyBytes_AS_STRING(out)) < 0) out = NULL;
done:
    for (Py_ssize_t c = 0; c < got; c++) PyBuffer_Release(&views[c]);
    return out;
}

static PyMethodDef methods[] = {
    {"parse", parse, METH_VARARGS,
     "parse(raw, sep, kinds) -> (rows, [bytearray per column], scales) | None\n\n"
     "kinds: one letter per column, 'i' int64, 'f' float64, or 'd' float64 as\n"
     "decimals: int64 numerators of m / 10**scale (scales[c]; -1: it came out\n"
     "float64). Each bytearray holds at least rows native 8-byte values.\n"
     "None: pyarrow must parse it."},
    {"format", format, METH_VARARGS,
     "format(columns, scales, sep, rows) -> bytes\n\n"
     "The rows as delimited text, a line each: columns[c] holds int64 values\n"
     "(buffers of at least rows), written as integers (scales[c] == 0) or as\n"
     "decimals m / 10**scales[c] with scales[c] digits after the point."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_numcsv", NULL, -1, methods};

PyMODINIT_FUNC PyInit__numcsv(void) { return PyModule_Create(&module); }
