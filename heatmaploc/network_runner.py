"""Running a network on images: one path for both engines (a torch module on any
device, or an ONNX network run by onnxruntime on the CPU), with the preprocessing of
:mod:`heatmaploc.data.preprocess`, test-time augmentation (:mod:`heatmaploc.tta`),
batching by shape, and tiling of large images (:mod:`heatmaploc.tiling`).  Torch is
imported only when the network is a torch module."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from heatmaploc.data.preprocess import intensity_bounds, normalize, to_unit_range
from heatmaploc.inference import batches_by_shape
from heatmaploc.onnx_network import OnnxNetwork
from heatmaploc.outputs import HeatmapOutput
from heatmaploc.tiling import TileConfig, n_tiles, tiled_maps


def cpu_only(device: Any) -> str:
    """``"cpu"`` when ``device`` is the CPU, else a ``ValueError`` naming it: onnxruntime
    runs an ONNX network on the CPU."""
    if str(device) != "cpu":
        raise ValueError(f"an ONNX network runs on the CPU (onnxruntime), not on {device!r}")
    return "cpu"


@dataclass(frozen=True)
class NetworkRunner:
    """A network and how it runs.

    Attributes:
        model: a torch module (a registry model) or an :class:`OnnxNetwork`.
        device: the torch device (``"cpu"`` for ONNX).
        tta: test-time augmentation mode (:data:`heatmaploc.tta.TTA_MODES`).
        tiling: tiled inference of large images.
        in_channels: the network's input channels (images are converted to them).
    """

    model: Any
    device: Any
    tta: str
    tiling: TileConfig
    in_channels: int

    @property
    def is_onnx(self) -> bool:
        """True when onnxruntime runs the network."""
        return isinstance(self.model, OnnxNetwork)

    def network_input(self, image: np.ndarray, name: str, bounds: tuple[float, float] | None = None) -> np.ndarray:
        """``(C, H, W)`` float32 network input of an image (or a tile of it, normalized
        with the whole image's intensity ``bounds``)."""
        return np.ascontiguousarray(normalize(to_unit_range(image, self.in_channels, name, bounds)))

    def produces_maps(self) -> bool:
        """True for heatmap models (maps to tile and decode), False for point models."""
        if self.is_onnx:
            return True
        from heatmaploc.models.outputs import HeatmapModel

        return isinstance(self.model, HeatmapModel)

    def maps(self, x: np.ndarray) -> np.ndarray:
        """``(B, C, H, W)`` inputs -> ``(B, K[+3], H, W)`` maps averaged over the
        test-time augmentation, by either engine."""
        if self.is_onnx:
            return self.model.maps(x, self.tta)
        import torch

        from heatmaploc.tta import averaged_maps

        with torch.no_grad():
            return averaged_maps(self.model, torch.from_numpy(x).to(self.device), self.tta).float().cpu().numpy()

    def work_units(self, shape: tuple[int, ...]) -> int:
        """Units of :meth:`outputs`'s ``progress`` for an image of ``shape``: its
        tiles when it is tiled, else 1."""
        hw = tuple(shape[:2])
        return n_tiles(hw, self.tiling) if self.produces_maps() and self.tiling.applies(hw) else 1

    def outputs(self, loaded: Sequence[tuple[np.ndarray, str]], batch_size: int,
                progress: Callable[[int], None] | None = None) -> list[Any]:
        """Undecoded outputs of ``(array, name)`` images, batched by size (per image the
        maps of a heatmap model, averaged over the test-time augmentation, or the points
        of a point model; :mod:`heatmaploc.outputs`); large images of heatmap models in
        tiles (:meth:`tiled_output`).  ``progress`` is called with the number of work
        units done (:meth:`work_units`); an exception it raises stops the work."""
        maps_model = self.produces_maps()
        tiled = [maps_model and self.tiling.applies(im.shape[:2]) for im, _ in loaded]
        whole = [i for i, t in enumerate(tiled) if not t]
        inputs = [self.network_input(*loaded[i]) for i in whole]
        out: list[Any] = [None] * len(loaded)
        if self.is_onnx:
            for batch in batches_by_shape([x.shape for x in inputs], batch_size):
                for j, o in zip(batch, self.model.outputs(np.stack([inputs[j] for j in batch]), self.tta)):
                    out[whole[j]] = o
                if progress is not None:
                    progress(len(batch))
        elif whole:
            import torch

            from heatmaploc.inference import predict_samples

            samples = [{"image": torch.from_numpy(x)} for x in inputs]
            for i, o in zip(whole, predict_samples(self.model, samples, self.device, batch_size, tta=self.tta)):
                out[i] = o
            if progress is not None:
                progress(len(whole))
        for i in (i for i, t in enumerate(tiled) if t):
            out[i] = self.tiled_output(*loaded[i], progress=progress)
        return out

    def tiled_output(self, image: np.ndarray, name: str,
                     progress: Callable[[int], None] | None = None) -> HeatmapOutput:
        """The stitched maps of one large image (:func:`heatmaploc.tiling.tiled_maps`);
        each tile is normalized with the whole image's intensity bounds."""
        from tqdm import tqdm

        bounds = intensity_bounds(image)

        def tile_input(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
            return self.network_input(image[y0:y1, x0:x1], name, bounds)

        shape = image.shape[:2]
        with tqdm(total=n_tiles(shape, self.tiling), desc=f"tiles of {Path(name).name}", unit="tile", leave=False,
                  disable=None) as bar:
            def done(n: int) -> None:
                bar.update(n)
                if progress is not None:
                    progress(n)

            maps = tiled_maps(self.maps, tile_input, shape, self.tiling, int(getattr(self.model, "pad_multiple", 1)),
                              done)
        return HeatmapOutput(maps, tiled=True)
