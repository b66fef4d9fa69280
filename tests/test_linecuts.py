"""The first-field cut rule compiled (lepton/data/_linecuts.c) decides every
line exactly as the numpy version does: the same boundaries, whatever lies
in the buffer past the data; and a chunk with no boundary in reach ends
where the line ends say it must, or waits for more to be read."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lepton.data import linecuts

LINE = st.one_of(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),  # any bytes, short and long prefixes
    st.text(alphabet="0123456789,;ab", max_size=30).map(str.encode),  # keys before separators
)


@st.composite
def _buffers(draw: st.DrawFn) -> tuple[bytearray, int, int, bool, str | None, int]:
    head = draw(st.lists(LINE, max_size=3))
    lines = draw(st.lists(LINE, max_size=60))
    before = b"".join(x + b"\n" for x in head)  # ``base`` is a line start
    body = b"\n".join(lines) + (b"\n" if draw(st.booleans()) else b"")
    body = body or b"0"  # line_chunks cuts only where data remains
    stale = draw(st.binary(max_size=24))  # the reused read buffer holds old bytes past ``end``
    buf = bytearray(before + body + stale)
    sep = draw(st.sampled_from([",", ";", None]))
    avg = draw(st.sampled_from([4, 16, 100, linecuts.AVG_BYTES]))  # small: boundaries are frequent
    return buf, len(before), len(before) + len(body), draw(st.booleans()), sep, avg


def test_the_compiled_cuts_are_built() -> None:
    assert linecuts._linecuts is not None  # noqa: SLF001


@settings(max_examples=400, deadline=None)
@given(_buffers())
def test_compiled_cuts_equal_numpys(case: tuple[bytearray, int, int, bool, str | None, int]) -> None:
    buf, base, end, eof, sep, avg = case
    want_ends, want_bounds = linecuts.numpy_cuts(buf, base, end, eof, sep, avg)
    assert linecuts.first_field_boundaries(buf, base, end, eof, sep, avg).tolist() == want_bounds.tolist()


def _cut_by_ends(ends: np.ndarray, bounds: np.ndarray, pos: int, end: int, eof: bool) -> int | None:
    """_Lines.cut from every line end, as it was computed before it searched
    the buffer; None where more must be read to decide."""
    i = int(np.searchsorted(bounds, pos + linecuts.MIN_BYTES))
    if i < len(bounds) and bounds[i] - pos <= linecuts.CDC_MAX:
        return int(bounds[i])
    if not eof and end <= pos + linecuts.CDC_MAX:
        return None  # a boundary may yet come, or the end of the file right there
    j = int(np.searchsorted(ends, pos + linecuts.CDC_MAX, side="right")) - 1
    if j >= 0 and ends[j] > pos:
        return int(ends[j])
    k = int(np.searchsorted(ends, pos, side="right"))
    return int(ends[k]) if k < len(ends) else None


@settings(max_examples=400, deadline=None)
@given(_buffers(), st.sampled_from([(2, 8), (8, 40), (64, 400)]))
def test_a_chunk_ends_where_the_line_ends_say(case, sizes) -> None:  # type: ignore[no-untyped-def]
    """Small MIN_BYTES and CDC_MAX, so that cuts often find no boundary in reach."""
    buf, base, end, eof, sep, avg = case
    ends, bounds = linecuts.numpy_cuts(buf, base, end, eof, sep, avg)
    lo, hi = sizes
    old = linecuts.MIN_BYTES, linecuts.CDC_MAX
    linecuts.MIN_BYTES, linecuts.CDC_MAX = lo, hi
    try:
        lines = linecuts._Lines(buf, base, end, eof, sep)  # noqa: SLF001
        lines.boundaries = bounds  # the same boundaries, with or without the extension
        for pos in [base, *ends.tolist()[:-1]]:
            assert lines.cut(pos) == _cut_by_ends(ends, bounds, pos, end, eof), pos
    finally:
        linecuts.MIN_BYTES, linecuts.CDC_MAX = old


def test_labels_like_lines_cut_alike_at_scale() -> None:
    """600,000 `id,label` lines (the relabel benchmark's shape, ~6.6 MB: a few boundaries), real sizes."""
    rng = np.random.default_rng(5)
    ids = rng.permutation(10**7)[:600_000] + 10**7
    text = "".join(f"{i},{rng.integers(0, 10)}\n" for i in ids.tolist()).encode()
    buf = bytearray(text + b"stale")
    bounds = linecuts.first_field_boundaries(buf, 0, len(text), True, ",")
    _, want_bounds = linecuts.numpy_cuts(buf, 0, len(text), True, ",")
    assert np.array_equal(bounds, want_bounds)
    assert len(bounds) > 0
