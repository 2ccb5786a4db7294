"""The physics of wave images, in one place: the Green's functions
(:mod:`~heatmaploc.physics.kernels`), the one forward model that renders a field of
point sources and what an instrument observes of it (:mod:`~heatmaploc.physics.forward`),
colormap rendering and its inverse (:mod:`~heatmaploc.physics.colormap`), the
least-squares field fit that refines points (:mod:`~heatmaploc.physics.fieldfit`) and
the Cramér-Rao bounds of localization (:mod:`~heatmaploc.physics.crlb`).  The
simulator and the benchmark build on it."""
from heatmaploc.physics.fieldfit import FieldFit, FieldModel, fit_field, model_from_meta, refine_points
from heatmaploc.physics.forward import OBSERVABLES, observe, unit_fields, wave_field
from heatmaploc.physics.kernels import KERNELS

__all__ = ["FieldFit", "FieldModel", "fit_field", "model_from_meta", "refine_points", "OBSERVABLES", "observe",
           "unit_fields", "wave_field", "KERNELS"]
