"""The shipped model's files, and which engine can run it here (no torch import).

The package ships the default model twice: ``assets/default.pt`` (the checkpoint, for
torch; float16 weights) and ``assets/default.onnx`` (the same network exported with
``heatmaploc export default heatmaploc/assets/default.onnx --half``, for a torch-free
install).  ``tests/test_onnx.py`` checks that the two agree.
"""
from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path

SHIPPED = "default"  # the name that stands for the shipped model wherever a model path is taken
DEFAULT_CHECKPOINT = "default.pt"
DEFAULT_ONNX = "default.onnx"
# the optional dependencies and the extra that installs each (setup.cfg)
EXTRA_OF_MODULE = {"torch": "torch", "torchvision": "torch", "segmentation_models_pytorch": "torch",
                   "onnxruntime": "onnx-runtime", "onnx": "onnx", "napari": "napari", "magicgui": "napari",
                   "trackpy": "trackpy", "acoular": "acoustics"}
TORCH_INSTALL = "pip install 'heatmaploc[torch]'"
ONNX_RUNTIME_INSTALL = "pip install 'heatmaploc[onnx-runtime]'"


def asset_path(name: str) -> Path:
    """Path of a file in the installed package's ``assets`` folder."""
    return Path(str(resources.files("heatmaploc") / "assets" / name))


def default_checkpoint_path() -> Path:
    """Path of the shipped default checkpoint inside the installed package."""
    return asset_path(DEFAULT_CHECKPOINT)


def default_onnx_path() -> Path:
    """Path of the shipped default network as ONNX inside the installed package."""
    return asset_path(DEFAULT_ONNX)


def missing_extra_message(err: ModuleNotFoundError) -> str | None:
    """One line naming the extra to install for a missing optional dependency, or None
    when ``err`` is about another module."""
    top = (err.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    if extra is None:
        return None
    return f"this needs the '{top}' package, which is not installed here: pip install 'heatmaploc[{extra}]'"


def has_module(name: str) -> bool:
    """True when ``name`` can be imported here (found, not imported)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def default_model(engine: str = "auto") -> tuple[str, Path]:
    """``(engine, path)`` of the shipped model for ``engine``: ``"torch"`` (the
    checkpoint), ``"onnx"`` (the same network as ONNX), or ``"auto"``: torch where it is
    installed, else onnxruntime; a ``ValueError`` when neither is, a
    ``FileNotFoundError`` when the file is missing from the installation."""
    if engine not in ("auto", "torch", "onnx"):
        raise ValueError(f"engine must be 'auto', 'torch' or 'onnx', got {engine!r}")
    if engine == "auto":
        if not has_module("torch") and not has_module("onnxruntime"):
            raise ValueError(f"running a model needs torch or onnxruntime: {TORCH_INSTALL} or {ONNX_RUNTIME_INSTALL}")
        engine = "torch" if has_module("torch") else "onnx"
    path = default_checkpoint_path() if engine == "torch" else default_onnx_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the shipped default model is missing from this installation")
    return engine, path
