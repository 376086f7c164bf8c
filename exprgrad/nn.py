"""`exprgrad.nn`: micrograd's neural-network modules on `exprgrad.Value`
(defined in `exprgrad.runtime.nn`)."""

from .runtime.nn import MLP, Layer, Module, Neuron

__all__ = ["Module", "Neuron", "Layer", "MLP"]
