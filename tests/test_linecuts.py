"""The first-field cut rule compiled (lepton/data/_linecuts.c) decides every
line exactly as the numpy version does: the same line ends, the same
boundaries, whatever lies in the buffer past the data."""

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
    ends, bounds = linecuts.first_field_cuts(buf, base, end, eof, sep, avg)
    want_ends, want_bounds = linecuts.numpy_cuts(buf, base, end, eof, sep, avg)
    assert ends.tolist() == want_ends.tolist()
    assert bounds.tolist() == want_bounds.tolist()
    assert linecuts.first_field_boundaries(buf, base, end, eof, sep, avg).tolist() == want_bounds.tolist()


def test_labels_like_lines_cut_alike_at_scale() -> None:
    """200,000 `id,label` lines (the relabel benchmark's shape), real sizes."""
    rng = np.random.default_rng(5)
    ids = rng.permutation(10**7)[:200_000] + 10**7
    text = "".join(f"{i},{rng.integers(0, 10)}\n" for i in ids.tolist()).encode()
    buf = bytearray(text + b"stale")
    ends, bounds = linecuts.first_field_cuts(buf, 0, len(text), True, ",")
    want_ends, want_bounds = linecuts.numpy_cuts(buf, 0, len(text), True, ",")
    assert np.array_equal(ends, want_ends) and np.array_equal(bounds, want_bounds)
    assert np.array_equal(linecuts.first_field_boundaries(buf, 0, len(text), True, ","), want_bounds)
    assert len(bounds) > 0
