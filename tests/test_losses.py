import numpy as np
import pytest
import torch

from heatmaploc.codec import HeatmapCodec
from heatmaploc.losses import heatmap_loss, penalty_reduced_focal_loss, target_peaks, weighted_bce_loss


def _target():
    hm = HeatmapCodec(sigma=2.0).encode(np.array([[5.3, 6.6], [20.0, 12.0]]), (24, 32))
    return torch.from_numpy(hm)[None]


def test_peaks_of_subpixel_targets_are_the_positives():
    peaks = target_peaks(_target())
    assert peaks.sum() == 2 and peaks[0, 0, 7, 5] and peaks[0, 0, 12, 20]


def test_bce_is_minimal_at_the_target_probabilities():
    target = _target()
    exact = torch.logit(target.clamp(1e-6, 1 - 1e-6))
    base = weighted_bce_loss(exact, target).item()
    for delta in (-0.5, 0.5):
        assert weighted_bce_loss(exact + delta, target).item() > base


def test_focal_loss_rewards_confident_peaks_and_quiet_background():
    target = _target()
    good = torch.where(target_peaks(target), torch.tensor(6.0), torch.tensor(-6.0))
    bad = -good
    assert penalty_reduced_focal_loss(good, target) < 0.01 < penalty_reduced_focal_loss(bad, target)
    assert torch.isfinite(penalty_reduced_focal_loss(torch.zeros_like(target), torch.zeros_like(target)))


def test_loss_dispatch():
    t = _target()
    assert heatmap_loss("bce", torch.zeros_like(t), t) > 0 and heatmap_loss("focal", torch.zeros_like(t), t) > 0
    with pytest.raises(ValueError, match="unknown loss"):
        heatmap_loss("l2", t, t)
