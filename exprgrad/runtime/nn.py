"""micrograd's `nn`, on exprgrad's `Value`.

`Module`, `Neuron`, `Layer` and `MLP` behave as in micrograd: weights start
uniform in [-1, 1) drawn from `random` in the same order, biases start at 0,
hidden layers are nonlinear and the output layer is linear.  So with the same
`random.seed`, an exprgrad MLP and a micrograd MLP hold the same numbers.

The nonlinearity is ReLU by default; `activation="tanh"` (or any one-input
built-in with a derivative, such as "sigmoid" or "softplus") selects another,
and `output_activation=` gives the output layer one too.
"""

from __future__ import annotations

import random

from ..compiler.ops import OPS
from .value import Value

__all__ = ["Module", "Neuron", "Layer", "MLP"]


def _check_activation(activation: str) -> str:
    spec = OPS.get(activation)
    if spec is None or spec.builtin != activation or spec.arity != 1 or spec.grad is None:
        choices = sorted(o.builtin for o in OPS.values()
                         if o.builtin and o.arity == 1 and o.grad is not None)
        raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(choices)}")
    return activation


class Module:
    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0.0

    def parameters(self) -> list[Value]:
        return []


class Neuron(Module):
    def __init__(self, nin: int, nonlin: bool = True, activation: str = "relu"):
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0)
        self.nonlin = nonlin
        self.activation = _check_activation(activation)

    def __call__(self, x) -> Value:
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return getattr(act, self.activation)() if self.nonlin else act

    def parameters(self) -> list[Value]:
        return self.w + [self.b]

    def __repr__(self) -> str:
        kind = ("ReLU" if self.activation == "relu" else self.activation) if self.nonlin \
            else "Linear"
        return f"{kind}Neuron({len(self.w)})"


class Layer(Module):
    def __init__(self, nin: int, nout: int, **kwargs):
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x):
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """Layers of `nouts` neurons on `nin` inputs.  Hidden layers apply
    `activation`; the output layer is linear, as in micrograd, unless
    `output_activation` names one (the lecture's network: tanh everywhere is
    `MLP(3, [4, 4, 1], activation="tanh", output_activation="tanh")`)."""

    def __init__(self, nin: int, nouts: list[int], activation: str = "relu",
                 output_activation: str | None = None):
        sz = [nin] + list(nouts)
        last = len(nouts) - 1
        self.layers = [Layer(sz[i], sz[i + 1], nonlin=i != last or output_activation is not None,
                             activation=activation if i != last or output_activation is None
                             else output_activation)
                       for i in range(len(nouts))]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"
