"""The support of the physics refinement's additions (heatmaploc.physics.support and
heatmaploc.inference.support_candidates): heatmap peaks above the support floor and
where the heatmap shows a trace."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heatmaploc.codec import CodecConfig, HeatmapCodec
from heatmaploc.inference import support_candidates
from heatmaploc.outputs import HeatmapOutput, PointOutput
from heatmaploc.physics.support import (SUPPORT_SHARE, TRACE_RADIUS_PX, TRACE_SHARE, Support, as_support, peaks_near,
                                        support_peaks)
from heatmaploc.points import Points


def test_an_array_of_peaks_is_a_support_without_a_trace_map():
    xy = np.array([[1.0, 2.0], [3.0, 4.0]])
    support = as_support(xy)
    assert np.array_equal(support.peaks, xy) and support.trace is None and support.traced(np.array([50.0, 50.0]))
    assert as_support(None) is None and support_peaks(None) is None
    assert as_support(support) is support and support_peaks(np.zeros((0, 2))).shape == (0, 2)
    with pytest.raises(ValueError, match=r"\(c, 2\) rows.*\(4,\)"):
        as_support(np.arange(4.0))


@pytest.mark.parametrize("x, y, found", [(10.0, 10.0, True), (12.4, 8.0, True), (12.6, 10.0, False),
                                         (10.0, 7.4, False), (-3.0, 10.0, False), (30.0, 10.0, False)])
def test_a_trace_counts_within_its_box_around_the_addition(x, y, found):
    trace = np.zeros((20, 24), bool)
    trace[10, 10] = True
    assert TRACE_RADIUS_PX == 2 and Support(np.zeros((0, 2)), trace).traced(np.array([x, y])) is found


def test_support_candidates_are_peaks_above_the_floor_and_the_trace_of_the_heatmap():
    codec = HeatmapCodec(CodecConfig(threshold=0.4, refine="parabola"))
    yy, xx = np.mgrid[0:32, 0:32]
    peaks = [(0.9, 8, 9), (0.3, 24, 20), (0.1, 25, 4)]  # (height, x, y)
    heat = sum(a * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 8.0) for a, x, y in peaks)
    support = support_candidates([HeatmapOutput(heat[None].astype(np.float32))], codec)[0]
    # peaks of 0.9 and 0.3 reach half of 0.4; 0.1 does not, but is a trace (0.07 * 0.4)
    assert np.allclose(sorted(support.peaks.tolist()), [[8.0, 9.0], [24.0, 20.0]], atol=1e-6)
    assert np.array_equal(support.trace, heat >= TRACE_SHARE * 0.4) and support.trace[4, 25]
    assert SUPPORT_SHARE * 0.4 > 0.1 > TRACE_SHARE * 0.4
    points = Points(np.array([[3.0, 5.0]]))
    (point_support,) = support_candidates([PointOutput(points)], codec)
    assert np.array_equal(point_support.peaks, points.xy) and point_support.trace is None


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 8), st.integers(0, 5), st.floats(0.5, 6.0), st.integers(0, 2**31 - 1))
def test_peaks_near_keeps_in_order_exactly_the_peaks_within_reach_of_a_source(c, m, reach, seed):
    rng = np.random.default_rng(seed)
    peaks, sources = rng.uniform(0, 30, (c, 2)), rng.uniform(0, 30, (m, 2))
    near = peaks_near(peaks, sources, reach)
    dist = np.linalg.norm(peaks[:, None] - sources[None], axis=2).min(axis=1) if m else np.full(c, np.inf)
    assert np.array_equal(near, peaks[dist <= reach])
    assert peaks_near(None, sources, reach) is None
