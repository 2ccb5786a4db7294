"""Localizer: load a checkpoint (or the shipped default) and predict point lists.

A :class:`Localizer` is a network, its codec and its inference settings
(:class:`~heatmaploc.inference_config.InferenceConfig`: test-time augmentation, the
thresholds calibrated per mode, tiling).  Its network runs through
:class:`~heatmaploc.network_runner.NetworkRunner`: preprocessing exactly as in training
(:mod:`heatmaploc.data.preprocess`; any ``H, W``, gray or RGB), test-time augmentation,
tiling of large images, and either engine: torch (a checkpoint, any device) or
onnxruntime (an exported ``.onnx`` file on the CPU; this module imports torch only for
a checkpoint).  Decoding is the codec's; the refinements after it
(:data:`FIT_MODES`) are the physics package's.
"""
from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from heatmaploc.codec import REFINE_MODES, CodecConfig, HeatmapCodec
from heatmaploc.data.inputs import ImageLike, load_input
from heatmaploc.inference import support_candidates
from heatmaploc.inference_config import InferenceConfig
from heatmaploc.onnx_network import OnnxNetwork
from heatmaploc.network_runner import NetworkRunner, cpu_only
from heatmaploc.points import PhysicalFrame, Points
from heatmaploc.tiling import TileConfig

PHYSICS_REFINE = "physics"  # the refine mode that runs the blind physics fit after decoding
FIELD_REFINE = "field"  # the refine mode that fits a known wave model (a FieldModel) after decoding
FIT_MODES = (PHYSICS_REFINE, FIELD_REFINE)  # the refine modes that run after decoding


def check_physics(fit: str | None, physics: Any) -> None:
    """A ``ValueError`` when ``physics`` does not fit the refine mode ``fit``: a mapping
    (or nothing) of what is known for ``"physics"``, a ``FieldModel`` for ``"field"``,
    nothing otherwise."""
    if fit == FIELD_REFINE:
        from heatmaploc.physics.fieldfit import FieldModel

        if not isinstance(physics, FieldModel):
            raise ValueError("refine='field' fits a known wave model: give physics=FieldModel(kernel, wavelength, ...)")
    elif fit == PHYSICS_REFINE:
        if physics is not None and not isinstance(physics, Mapping):
            raise ValueError(f"physics for refine='physics' is a mapping of what is known, got {type(physics).__name__}")
    elif physics is not None:
        raise ValueError("physics (what is known of the wave model) needs refine='physics' or refine='field'")


class Localizer:
    """A trained model + its codec, ready to predict.

    Args:
        model: a registry model (``heatmapnet``, baselines).
        codec: the :class:`HeatmapCodec` it was trained with (threshold included).
        device: where the model runs.
        inference: how the network runs (:class:`~heatmaploc.inference_config.InferenceConfig`):
            its ``tta`` is this localizer's test-time augmentation (``"none"``: one
            forward pass), its calibration per mode is what :meth:`with_tta` switches
            to, its ``tiling`` the tiled inference of large images.
    """

    def __init__(self, model: Any, codec: HeatmapCodec, device: Any = "cpu",
                 inference: InferenceConfig | None = None) -> None:
        if isinstance(model, OnnxNetwork):
            self.device, self.model = cpu_only(device), model
        else:  # a torch module
            import torch

            self.device = torch.device(device)
            self.model = model.to(self.device).eval()
        codec.check_model(model)
        self.codec = codec
        self.in_channels = int(getattr(model, "in_channels", 3))
        self.inference = inference if inference is not None else InferenceConfig()

    @property
    def tta(self) -> str:
        """The test-time augmentation mode (:data:`heatmaploc.tta.TTA_MODES`)."""
        return self.inference.tta

    @property
    def tiling(self) -> TileConfig:
        """Tiled inference of large images."""
        return self.inference.tiling

    # -- construction
    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", tta: str | None = None) -> "Localizer":
        """Load a checkpoint written by training (``best.pt``) or the shipped model;
        ``tta=None`` takes the checkpoint's ``inference.tta`` (else ``"none"``), and
        the threshold and sigma factor calibrated for that mode when the checkpoint
        has them."""
        from heatmaploc.checkpoint import load_checkpoint
        from heatmaploc.inference import pick_device
        from heatmaploc.models import build_model

        ckpt = load_checkpoint(path)
        model = build_model(ckpt["model_config"])
        try:
            model.load_state_dict(ckpt["model_state"])
        except RuntimeError as err:
            raise ValueError(f"{path}: weights do not match the model config ({str(err).splitlines()[0]})") from None
        inference = InferenceConfig.from_dict(ckpt.get("inference"), str(path)).with_(tta=tta)
        codec = inference.codec_for(HeatmapCodec(CodecConfig(**ckpt.get("codec_config", {}))))
        return cls(model, codec, pick_device(device), inference)

    @classmethod
    def from_onnx(cls, path: str | Path, tta: str | None = None, threads: int | None = None) -> "Localizer":
        """A network exported by ``heatmaploc export`` (:mod:`heatmaploc.onnx_export`),
        run by onnxruntime on the CPU (:class:`~heatmaploc.onnx_network.OnnxNetwork`; no
        torch needed) with the same preprocessing, tiling, test-time augmentation and
        decoding as the torch model it came from (codec and calibration travel in the
        file's metadata); ``tta`` as in :meth:`from_checkpoint`."""
        net = OnnxNetwork(path, threads)
        inference = InferenceConfig.from_dict(net.meta["inference"], str(path)).with_(tta=tta)
        try:
            codec = HeatmapCodec(CodecConfig(**net.meta["codec_config"]))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: its codec metadata does not fit this heatmaploc ({err})") from None
        return cls(net, inference.codec_for(codec), "cpu", inference)

    @classmethod
    def default(cls, device: str = "auto", tta: str | None = None, engine: str = "auto") -> "Localizer":
        """The model shipped with the package (see README for what it was trained on).

        ``engine``: ``"torch"`` (the checkpoint), ``"onnx"`` (the same network as ONNX,
        run by onnxruntime on the CPU), or ``"auto"``: torch where it is installed, else
        onnxruntime (a torch-free install, ``heatmaploc[onnx-runtime]``)."""
        from heatmaploc.shipped import default_model

        engine, path = default_model(engine)
        if engine == "onnx":
            cpu_only("cpu" if device == "auto" else device)
            return cls.from_onnx(path, tta)
        return cls.from_checkpoint(path, device, tta)

    @property
    def threshold(self) -> float:
        return self.codec.config.threshold

    @property
    def is_onnx(self) -> bool:
        """True when onnxruntime runs the network (an exported file), not torch."""
        return isinstance(self.model, OnnxNetwork)

    @property
    def has_regression(self) -> bool:
        """True when the model predicts sub-pixel offsets and sigmas (a regression head)."""
        return bool(getattr(getattr(self.model, "config", None), "regression", False))

    # -- inference
    @property
    def runner(self) -> NetworkRunner:
        """How this localizer runs its network (:class:`~heatmaploc.network_runner.NetworkRunner`)."""
        return NetworkRunner(self.model, self.device, self.tta, self.tiling, self.in_channels)

    def heatmap(self, image: ImageLike) -> np.ndarray:
        """``(K, H, W)`` float32 source probability map of one image (heatmap models)."""
        return self.raw_outputs([image])[0].heatmap(self.codec)

    def raw_outputs(self, images: Sequence[ImageLike], batch_size: int = 16,
                    progress: Callable[[int], None] | None = None) -> list[Any]:
        """Undecoded outputs, batched by size (:mod:`heatmaploc.outputs`: per image the
        maps of a heatmap model, averaged over this localizer's test-time augmentation,
        or the points of a point model; what :func:`heatmaploc.evaluation.evaluate_outputs`
        and :meth:`points_from_outputs` take).  ``progress`` is called with the number
        of work units done (:meth:`work_units`: a tile of a tiled image, else an image);
        an exception it raises stops the work (a GUI's cancel)."""
        return self.runner.outputs([load_input(im) for im in images], batch_size, progress)

    def work_units(self, shape: tuple[int, ...]) -> int:
        """Units of :meth:`raw_outputs`'s ``progress`` for an image of ``shape``: its
        tiles when it is tiled, else 1."""
        return self.runner.work_units(shape)

    def predict(self, image: ImageLike, threshold: float | None = None, pixel_size: float | None = None,
                origin: tuple[float, float] = (0.0, 0.0), refine: str | None = None,
                physics: Any = None) -> Points:
        """Points of one image: ``xy (N, 2)`` pixels (docs/design.md section 1), ``scores``,
        ``sigma``, ``count``; with ``pixel_size`` also ``xy_physical = origin +
        pixel_size * xy`` and ``sigma_physical``.

        ``refine``: a sub-pixel mode of the codec (``REFINE_MODES``) for this call;
        ``"physics"``: the network's points refined by the blind physics fit
        (:func:`heatmaploc.physics.refine.refine_physics`: wave model estimated from
        the image, count corrected, sigma from the fit; ``physics`` gives what is
        known, e.g. ``{"kernel": "plate"}``; ``Points.refined`` says whether the fit
        was used and ``Points.physics`` what it estimated); or ``"field"``: the
        points moved by a least-squares fit of a known wave model (``physics``: a
        :class:`heatmaploc.physics.fieldfit.FieldModel`; the count stays the
        network's)."""
        return self.predict_batch([image], threshold=threshold, pixel_size=pixel_size, origin=origin, refine=refine,
                                  physics=physics, workers=1)[0]

    def predict_batch(self, images: Sequence[ImageLike] | Iterable[ImageLike], threshold: float | None = None,
                      batch_size: int = 8, pixel_size: float | None = None,
                      origin: tuple[float, float] = (0.0, 0.0), refine: str | None = None,
                      physics: Any = None, workers: int | None = 1,
                      names: Sequence[str] | None = None) -> list[Points]:
        """Points of several images (of any sizes: equal sizes are batched together);
        ``refine``, ``physics`` as :meth:`predict`; ``workers`` processes share the
        physics refinement (``None``: one per CPU); ``names`` of array inputs for
        messages (a path names itself)."""
        frame = PhysicalFrame(pixel_size, tuple(origin)) if pixel_size is not None else None
        if refine is not None and refine not in FIT_MODES and refine not in REFINE_MODES:
            raise ValueError(f"refine must be one of {REFINE_MODES + FIT_MODES}, got {refine!r}")
        fit = refine if refine in FIT_MODES else None
        check_physics(fit, physics)
        loc = self.with_codec(refine=refine) if refine in REFINE_MODES else self
        images = list(images)
        loaded = [load_input(im, nm) for im, nm in zip(images, names if names is not None else [None] * len(images))]
        outputs = loc.runner.outputs(loaded, batch_size)
        points = loc.points_from_outputs(outputs, [im for im, _ in loaded], [nm for _, nm in loaded], threshold,
                                         fit, physics, workers)
        return [p.with_frame(frame) for p in points]

    def points_from_outputs(self, outputs: Sequence[Any], images: Sequence[np.ndarray] | None = None,
                            names: Sequence[str] | None = None, threshold: float | None = None,
                            fit: str | None = None, physics: Any = None, workers: int | None = 1) -> list[Points]:
        """The points of :meth:`raw_outputs` (decoded at ``threshold``, default the
        codec's), then refined when ``fit`` is one of :data:`FIT_MODES` (which needs
        the ``images``; ``names`` for its messages; ``physics``, ``workers`` as in
        :meth:`predict_batch`).  Decoding again at another threshold does not run the
        network again (the napari widget's live threshold)."""
        check_physics(fit, physics)
        points = [o.decode(self.codec, threshold) for o in outputs]
        if fit is None:
            return points
        if images is None or len(images) != len(outputs):
            raise ValueError(f"the {fit} refinement needs the images the outputs came from")
        if fit == FIELD_REFINE:
            return self.fit_field(images, points, physics, names)
        return self.refine(images, points, support_candidates(outputs, self.codec, threshold), physics, names,
                           workers)

    @staticmethod
    def fit_field(images: Sequence[np.ndarray], points: Sequence[Points], model: Any,
                  names: Sequence[str] | None = None) -> list[Points]:
        """Points moved by the least-squares fit of the known wave ``model`` (a
        :class:`heatmaploc.physics.fieldfit.FieldModel`) to each image
        (:func:`heatmaploc.physics.fieldfit.refine_points`; the count stays)."""
        from heatmaploc.physics.fieldfit import refine_points

        names = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
        return [refine_points(im, p, model, name=nm) for im, p, nm in zip(images, points, names)]

    def refine(self, images: Sequence[np.ndarray], points: Sequence[Points],
               candidates: Sequence[Any] | None = None, physics: Mapping[str, Any] | None = None,
               names: Sequence[str] | None = None, workers: int | None = 1, progress: bool = False) -> list[Points]:
        """The blind physics refinement of decoded points (one path for the API, the CLI
        and the napari widget; :func:`heatmaploc.physics.parallel.refine_many`):
        ``candidates[i]``, the :class:`~heatmaploc.physics.support.Support` of image
        ``i`` (:meth:`predict_with_support`; or its ``(c, 2)`` heatmap peaks above the
        support floor), is where a source may be added;
        ``physics`` what is known; ``workers`` processes (``None``: one per CPU);
        ``progress`` a progress bar."""
        from heatmaploc.physics.parallel import refine_many

        return refine_many(list(images), list(points), physics, names, workers, progress=progress,
                           candidates=candidates)

    def predict_with_support(self, image: ImageLike, threshold: float | None = None,
                             pixel_size: float | None = None) -> tuple[Points, Any]:
        """:meth:`predict`'s points of one image and its support
        (:func:`heatmaploc.inference.support_candidates`: heatmap peaks above a floor
        below the threshold, where the physics refinement may add a source, and where
        the heatmap shows a trace), from one pass of the network."""
        frame = PhysicalFrame(pixel_size, (0.0, 0.0)) if pixel_size is not None else None
        output = self.runner.outputs([load_input(image)], 1)
        return output[0].decode(self.codec, threshold).with_frame(frame), \
            support_candidates(output, self.codec, threshold)[0]

    def finetune(self, images: Sequence[ImageLike], points: Sequence[Any], *, out: str | Path,
                 val_images: Sequence[ImageLike] | None = None, val_points: Sequence[Any] | None = None,
                 minutes: float = 15.0, overrides: Mapping[str, Any] | None = None,
                 progress: bool = True) -> "Localizer":
        """This model fine-tuned on labelled images (:mod:`heatmaploc.finetune`, as
        ``heatmaploc finetune``): returns the calibrated localizer of ``out/best.pt``.

        Args:
            images: paths, arrays or PIL images; ``points[i]`` are the ``(N_i, 2)``
                sources of ``images[i]`` in pixels (docs/design.md section 1), an array
                or a :class:`~heatmaploc.points.Points`.
            out: the run folder; the images are written to ``out/data/`` as a dataset,
                and this model's weights to ``out/start.pt``.
            val_images, val_points: validation data; without them a share of
                ``images`` is held out (:data:`heatmaploc.finetune.VAL_SHARE`).
            minutes: the training budget; overrides: dotted values over the recipe.

        Raises:
            ValueError: an ONNX network (fine-tune the checkpoint it came from), image
                and point lists of different lengths, a folder ``out`` that holds a run,
                or what :func:`heatmaploc.finetune.finetune_config` refuses.
        """
        from heatmaploc.finetune import finetune_arrays

        if self.is_onnx:
            raise ValueError("an ONNX network cannot be fine-tuned; fine-tune the checkpoint it was exported from")
        best = finetune_arrays(self.checkpoint_payload(), [load_input(im)[0] for im in images], points, out,
                               None if val_images is None else [load_input(im)[0] for im in val_images],
                               val_points, minutes, overrides, progress)
        return Localizer.from_checkpoint(best, device=str(self.device))

    def checkpoint_payload(self) -> dict[str, Any]:
        """This localizer as a checkpoint's contents (model and codec config, weights,
        inference settings; :func:`heatmaploc.checkpoint.save_checkpoint` writes it)."""
        from dataclasses import asdict

        from heatmaploc.models import model_config_dict

        if self.is_onnx:
            raise ValueError("an ONNX network has no checkpoint; use the checkpoint it was exported from")
        return {"model_config": model_config_dict(self.model), "codec_config": asdict(self.codec.config),
                "model_state": self.model.state_dict(), "inference": self.inference.to_dict()}

    def with_threshold(self, threshold: float) -> "Localizer":
        """A copy that decodes with another threshold."""
        return self.with_codec(threshold=threshold)

    def to(self, device: Any) -> "Localizer":
        """This localizer on ``device`` (itself when already there; else the model is
        copied, so the original keeps its device; an ONNX network stays on the CPU)."""
        if self.is_onnx:
            cpu_only(device)
            return self
        import torch

        device = torch.device(device)
        if device == self.device:
            return self
        return Localizer(copy.deepcopy(self.model), self.codec, device, self.inference)

    def with_codec(self, **overrides: Any) -> "Localizer":
        """A copy whose codec differs in ``overrides`` (e.g. ``refine="parabola"``)."""
        return Localizer(self.model, HeatmapCodec(replace(self.codec.config, **overrides)), self.device,
                         self.inference)

    def with_tta(self, mode: str) -> "Localizer":
        """A copy with another test-time augmentation (:data:`heatmaploc.tta.TTA_MODES`),
        decoding at the threshold (and sigma factor) calibrated for ``mode`` when the
        checkpoint has them."""
        return Localizer(self.model, self.inference.codec_for(self.codec, mode), self.device,
                         self.inference.with_(tta=mode))

    def with_tiling(self, size: int | None = None, overlap: int | None = None) -> "Localizer":
        """A copy that tiles images larger than ``size`` pixels (0: never) with tiles
        overlapping by ``overlap`` pixels; what is not given stays."""
        return Localizer(self.model, self.codec, self.device, self.inference.with_(tile_size=size, tile_overlap=overlap))
