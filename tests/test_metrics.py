import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heatmaploc.metrics import match_points, pixel_confusion, pixel_metrics, point_metrics


def test_perfect_and_offsets():
    gt = [np.array([[1.0, 1.0], [10.0, 10.0]])]
    pred = [np.array([[10.0, 11.0], [1.0, 1.0]])]
    m = point_metrics(pred, gt, radius=2.0)
    assert (m.tp, m.fp, m.fn) == (2, 0, 0)
    assert m.f1 == 1.0 and m.count_accuracy == 1.0 and m.count_mae == 0.0
    assert m.rmse == pytest.approx(math.sqrt(0.5)) and m.mean_distance == pytest.approx(0.5)


def test_radius_is_inclusive_and_excludes_beyond():
    gt, pred = [np.array([[0.0, 0.0]])], [np.array([[3.0, 4.0]])]
    assert point_metrics(pred, gt, radius=5.0).tp == 1
    m = point_metrics(pred, gt, radius=4.99)
    assert (m.tp, m.fp, m.fn) == (0, 1, 1) and m.f1 == 0.0 and math.isnan(m.rmse)


def test_empty_cases_explicit():
    none = np.zeros((0, 2))
    both = point_metrics([none], [none], 2.0)
    assert (both.precision, both.recall, both.f1, both.count_accuracy) == (1.0, 1.0, 1.0, 1.0)
    assert math.isnan(both.rmse)
    miss = point_metrics([none], [np.array([[1.0, 1.0]])], 2.0)
    assert (miss.precision, miss.recall, miss.f1, miss.count_mae) == (1.0, 0.0, 0.0, 1.0)
    alarm = point_metrics([np.array([[1.0, 1.0], [5.0, 5.0]])], [none], 2.0)
    assert (alarm.precision, alarm.recall, alarm.f1, alarm.fp, alarm.count_mae) == (0.0, 1.0, 0.0, 2, 2.0)


def test_hungarian_beats_greedy_and_ties():
    # Greedy nearest-first would pair pred0-gt1 (distance 0.1) and leave pred1 without
    # a partner within r=1; the optimal assignment finds two pairs of 0.9.
    gt = np.array([[0.0, 0.0], [1.0, 0.0]])
    pred = np.array([[0.9, 0.0], [1.9, 0.0]])
    m = match_points(pred, gt, radius=1.0)
    assert m.tp == 2 and sorted(m.distances.round(6).tolist()) == [0.9, 0.9]
    # two predictions equidistant from one truth: exactly one tp, one fp
    tie = match_points(np.array([[1.0, 0.0], [-1.0, 0.0]]), np.array([[0.0, 0.0]]), radius=1.0)
    assert (tie.tp, tie.fp, tie.fn) == (1, 1, 0)


def test_pooled_vs_per_image():
    gt = [np.array([[0.0, 0.0]]), np.array([[5.0, 5.0], [9.0, 9.0]])]
    pred = [np.array([[0.5, 0.0]]), np.array([[5.0, 5.0]])]
    pooled = point_metrics(pred, gt, 1.0)
    per = point_metrics(pred, gt, 1.0, per_image=True)
    assert (pooled.tp, pooled.fn) == (2, 1)
    assert pooled.recall == pytest.approx(2 / 3) and pooled.count_accuracy == 0.5
    assert [p.recall for p in per] == [1.0, 0.5] and per[1].count_mae == 1.0


def test_pixel_metrics_hand_computed():
    true = np.array([[1, 1, 0, 0]], bool)
    pred = np.array([[1, 0, 1, 0]], bool)
    cm = pixel_confusion(pred, true)
    assert cm.tolist() == [[1, 1], [1, 1]]
    pm = pixel_metrics(cm)
    assert pm.iou == [pytest.approx(1 / 3), pytest.approx(1 / 3)]
    assert pm.miou == pytest.approx(1 / 3) and pm.mpa == pytest.approx(0.5) and pm.mf1 == pytest.approx(0.5)
    cm2 = pixel_confusion(np.array([[1, 1, 0, 0, 0, 0]], bool), np.array([[1, 0, 0, 0, 0, 0]], bool))
    pm2 = pixel_metrics(cm2)  # bg: tp 4, fn 1 ; src: tp 1, fp 1
    assert pm2.iou == [pytest.approx(4 / 5), pytest.approx(1 / 2)]
    assert pm2.precision == [pytest.approx(1.0), pytest.approx(0.5)]
    assert pm2.recall == [pytest.approx(0.8), pytest.approx(1.0)]
    assert pm2.f1[1] == pytest.approx(2 / 3)


def test_pixel_metrics_absent_class():
    all_bg = pixel_metrics(pixel_confusion(np.zeros((3, 3), bool), np.zeros((3, 3), bool)))
    assert all_bg.iou == [1.0, 1.0] and all_bg.f1 == [1.0, 1.0]
    false_alarm = pixel_metrics(pixel_confusion(np.eye(3, dtype=bool), np.zeros((3, 3), bool)))
    assert false_alarm.iou[1] == 0.0 and false_alarm.precision[1] == 0.0 and false_alarm.f1[1] == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        pixel_confusion(np.zeros((2, 2), bool), np.zeros((3, 3), bool))


coords = st.lists(st.tuples(st.floats(0, 50), st.floats(0, 50)), max_size=8)


@settings(max_examples=60, deadline=None)
@given(coords, coords, st.floats(0.1, 10.0), st.randoms(use_true_random=False))
def test_point_metric_invariants(pred, true, radius, rnd):
    p, t = np.array(pred).reshape(-1, 2), np.array(true).reshape(-1, 2)
    m = point_metrics([p], [t], radius)
    assert m.tp <= min(len(p), len(t)) and m.tp + m.fp == len(p) and m.tp + m.fn == len(t)
    assert 0.0 <= m.f1 <= 1.0 and 0.0 <= m.precision <= 1.0 and 0.0 <= m.recall <= 1.0
    if m.tp:
        assert m.rmse <= radius + 1e-9 and m.mean_distance <= m.rmse + 1e-9
    # order of either list does not matter
    perm_p, perm_t = list(range(len(p))), list(range(len(t)))
    rnd.shuffle(perm_p)
    rnd.shuffle(perm_t)
    m2 = point_metrics([p[perm_p]], [t[perm_t]], radius)
    assert (m2.tp, m2.fp, m2.fn) == (m.tp, m.fp, m.fn)
    # the maximum matching never shrinks when the radius grows
    assert point_metrics([p], [t], radius * 2).tp >= m.tp
    # swapping roles swaps precision and recall
    sw = point_metrics([t], [p], radius)
    assert sw.tp == m.tp and sw.precision == pytest.approx(m.recall) and sw.recall == pytest.approx(m.precision)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_pixel_confusion_sums(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.random((7, 9)) < 0.3, rng.random((7, 9)) < 0.3
    cm = pixel_confusion(a, b)
    assert cm.sum() == 63 and cm[1, 1] == np.sum(a & b) and cm[0, 1] == np.sum(a & ~b)
    pm = pixel_metrics(cm)
    assert all(0.0 <= v <= 1.0 for v in pm.iou + pm.f1) and pm.miou <= max(pm.iou)
