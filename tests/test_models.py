"""One shared model tester (smp's BaseModelTester style); each family is a subclass."""
import io

import pytest
import torch
import torch.nn.functional as F

from heatmaploc.models import build_model, model_complexity, model_config_dict
from heatmaploc.models.aspp import AttentionASPP
from heatmaploc.models.blocks import WindowAttention
from heatmaploc.models.head import prior_bias

SIZES = [(41, 67), (33, 45)]  # odd sides, neither a multiple of the encoder stride


def _tensor_out(out):
    return out if torch.is_tensor(out) else torch.cat([out["count"][:, None], out["coords"].flatten(1)], dim=1)


class BaseModelTester:
    name = "heatmapnet"
    overrides: dict = {}
    heatmap = True

    @property
    def channels(self) -> int:
        """Output channels: one heatmap, plus dx, dy, log sigma with a regression head."""
        return 4 if self.overrides.get("regression") else 1

    def build(self, **kw):
        torch.manual_seed(0)
        return build_model(self.name, **{**self.overrides, **kw})

    @pytest.mark.parametrize("in_channels", [1, 3])
    @pytest.mark.parametrize("size", SIZES)
    def test_forward_backward_any_size(self, in_channels, size):
        model = self.build(in_channels=in_channels)
        model.train()
        x = torch.randn(2, in_channels, *size)
        out = model(x)
        if self.heatmap:
            assert out.shape == (2, self.channels, *size)
        else:
            assert out["count"].shape == (2,) and out["coords"].shape[0] == 2
        _tensor_out(out).square().mean().backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)

    def test_batch_one_in_train_mode(self):
        model = self.build()
        model.train()
        out = _tensor_out(model(torch.randn(1, 3, *SIZES[1])))
        assert torch.isfinite(out).all()

    def test_save_load_gives_identical_outputs(self):
        model = self.build().eval()
        buf = io.BytesIO()
        torch.save({"config": model_config_dict(model), "state": model.state_dict()}, buf)
        buf.seek(0)
        saved = torch.load(buf, weights_only=False)
        torch.manual_seed(123)  # a different init that the state dict must overwrite
        again = build_model(saved["config"])
        again.load_state_dict(saved["state"])
        again.eval()
        x = torch.randn(2, 3, 64, 64)
        with torch.no_grad():
            assert torch.equal(_tensor_out(model(x)), _tensor_out(again(x)))

    def test_deterministic_under_fixed_seed(self):
        x = torch.randn(1, 3, 48, 40)
        with torch.no_grad():
            a = _tensor_out(self.build().eval()(x))
            b = _tensor_out(self.build().eval()(x))
        assert torch.equal(a, b)

    def test_initial_prior_and_complexity(self):
        model = self.build().eval()
        stats = model_complexity(model, (64, 64))
        assert stats["params_m"] > 0 and stats["gflops"] > 0
        if self.heatmap:
            with torch.no_grad():
                out = model(torch.randn(1, 3, 64, 64))
            assert 0.001 < torch.sigmoid(out[:, 0]).mean().item() < 0.1  # head bias starts near the 0.01 prior
            if self.channels > 1:
                assert torch.all(out[:, 1:] == 0)  # regression head: offsets 0, log sigma 0 at start


class TestHeatmapNet(BaseModelTester):
    name = "heatmapnet"


class TestHeatmapNetConvASPPNoFusion(BaseModelTester):
    overrides = {"aspp": "conv", "fusion": "none"}


class TestHeatmapNetCoordConvStride8(BaseModelTester):
    overrides = {"coordconv": True, "encoder_output_stride": 8}


class TestHeatmapNetOtherEncoder(BaseModelTester):
    overrides = {"encoder_name": "resnet18", "aspp_channels": 64}


class TestHeatmapNetRegression(BaseModelTester):
    overrides = {"regression": True}


class TestHeatmapNetRegressionGGCA(BaseModelTester):
    overrides = {"regression": True, "encoder_attention": "ggca"}

    def test_attention_sits_after_the_depthwise_conv_of_the_deeper_blocks(self):
        from heatmaploc.models.encoder_attention import GroupedCoordAttention

        features = self.build().encoder.features
        marked = [i for i, block in enumerate(features) if any(isinstance(m, GroupedCoordAttention) for m in block.modules())]
        assert marked == list(range(7, 18))
        conv = list(features[7].conv)
        assert isinstance(conv[2], GroupedCoordAttention) and conv[1][0].groups == conv[1][0].in_channels


class TestDeepLabV3Plus(BaseModelTester):
    name = "deeplabv3plus"


class TestDeepLabV3PlusRegression(BaseModelTester):
    name = "deeplabv3plus"
    overrides = {"regression": True}


class TestUnetRegression(BaseModelTester):
    name = "unet"
    overrides = {"regression": True}


class TestUnet(BaseModelTester):
    name = "unet"


class TestCascade(BaseModelTester):
    name = "cascade"
    overrides = {"blocks": 4, "hidden": 32}
    heatmap = False

    def test_two_stage_schedule_and_points(self):
        model = self.build()
        assert model.stage == 1 and not any(p.requires_grad for p in model.coord_head.parameters())
        out = model(torch.randn(2, 3, 32, 48))
        pts = [torch.tensor([[3.0, 4.0], [10.0, 20.0]]), torch.zeros(0, 2)]
        model.loss(out, pts, (32, 48)).backward()
        assert all(p.grad is None for p in model.coord_head.parameters())
        assert not model.update_stage(0.5) and model.update_stage(0.95) and model.stage == 2
        with torch.no_grad():
            out = {"count": torch.tensor([2.2, -0.3]), "coords": torch.zeros(2, model.config.max_points, 2)}
            out["coords"][0, 0] = torch.tensor([0.5, 0.25])
        decoded = model.to_points(out, (32, 48))
        assert [d.count for d in decoded] == [2, 0]
        assert decoded[0].xy[0].tolist() == [0.5 * 48 - 0.5, 0.25 * 32 - 0.5]
        loss = model.loss(model(torch.randn(2, 3, 32, 48)), pts, (32, 48))
        loss.backward()
        assert torch.isfinite(loss)


def test_registry_errors():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet")
    with pytest.raises(ValueError, match="unknown option"):
        build_model("heatmapnet", aspp_size=3)
    with pytest.raises(ValueError, match="aspp must be"):
        build_model("heatmapnet", aspp="magic")
    with pytest.raises(ValueError, match="output_stride"):
        build_model("heatmapnet", encoder_output_stride=32)
    with pytest.raises(ValueError, match="name"):
        build_model({"aspp": "conv"})
    with pytest.raises(ValueError, match="encoder_attention must be"):
        build_model("heatmapnet", encoder_attention="se")
    with pytest.raises(ValueError, match="MobileNetV2-style"):
        build_model("heatmapnet", encoder_name="resnet18", encoder_attention="ggca")
    model = build_model({"name": "heatmapnet", "aspp_windows": [2, 4, 4]})
    assert model.config.aspp_windows == (2, 4, 4)


def test_window_attention_smaller_map_than_window_equals_full_attention():
    torch.manual_seed(0)
    attn = WindowAttention(8, window=8, heads=2).eval()
    x = torch.randn(1, 8, 3, 5)  # one window covers everything: plain attention over 15 tokens
    with torch.no_grad():
        out = attn(x)
        qkv = attn.qkv(attn.norm(x)).flatten(2)  # (1, 24, 15)
        q, k, v = qkv.view(1, 3, 2, 4, 15).permute(1, 0, 2, 4, 3)
        ref = F.scaled_dot_product_attention(q, k, v).permute(0, 1, 3, 2).reshape(1, 8, 3, 5)
        ref = x + attn.proj(ref)
    assert torch.allclose(out, ref, atol=1e-5)


def test_attention_aspp_on_small_and_odd_maps():
    aspp = AttentionASPP(32, 16, windows=(2, 4, 8), heads=4).train()
    for batch, size in [(2, (1, 1)), (1, (2, 2)), (1, (3, 5)), (1, (7, 9))]:
        y = aspp(torch.randn(batch, 32, *size))
        assert y.shape == (batch, 16, *size) and torch.isfinite(y).all()


def test_prior_bias():
    assert torch.sigmoid(torch.tensor(prior_bias(0.01))).item() == pytest.approx(0.01)


def test_coordinate_attention_gates_rows_and_columns():
    from heatmaploc.models.encoder_attention import GroupedCoordAttention

    torch.manual_seed(0)
    gca = GroupedCoordAttention(24, groups=4).eval()
    x = torch.randn(2, 24, 5, 7)
    with torch.no_grad():
        assert torch.allclose(gca(x), x * torch.sigmoid(torch.tensor(4.0)) ** 2)  # starts as a uniform gate
        for conv in (gca.to_row, gca.to_col):
            conv.weight.normal_()
        y = gca(x)
    gate = y / x
    assert y.shape == x.shape and torch.isfinite(y).all()
    # the gate is a product of a per-row and a per-column factor: rank one per channel
    g = gate[0, 0]
    assert torch.allclose(g * g[0, 0], g[:, :1] * g[:1, :], atol=1e-5)
