"""Train micrograd's MLP(3, [4, 4, 1]) with the gradient exprgrad compiled.

The network and its loss are written in mlp.expr next to this script;
`exprgrad.load` compiles it to a plain-Python module whose `loss_grad`
returns the loss and the gradient of all 41 parameters as nested lists
shaped like the parameters.  Run:  python examples/train_mlp.py
"""

import random
import sys
from pathlib import Path

import exprgrad

STEPS = 200
LEARNING_RATE = 0.02
TARGET = 0.01


def initial_parameters(seed: int = 3):
    """Like micrograd.nn: weights uniform in [-1, 1], biases 0."""
    rng = random.Random(seed)

    def weights(rows: int, cols: int):
        return [[rng.uniform(-1, 1) for _ in range(cols)] for _ in range(rows)]

    W1, W2, w3 = weights(4, 3), weights(4, 4), weights(1, 4)[0]
    return [W1, [0.0] * 4, W2, [0.0] * 4, w3, 0.0]


def descend(value, grad, rate: float):
    """value - rate * grad, for a float or nested lists of floats."""
    if isinstance(value, list):
        return [descend(v, g, rate) for v, g in zip(value, grad)]
    return value - rate * grad


def main() -> int:
    model = exprgrad.load(Path(__file__).with_name("mlp.expr"))
    params = initial_parameters()
    for step in range(STEPS):
        loss, grads = model.loss_grad(*params)
        print(f"step {step:3d}  loss {loss:.6f}")
        if loss < TARGET:
            break
        params = [descend(p, g, LEARNING_RATE) for p, g in zip(params, grads)]
    predictions = model.predict(*params)
    print("predictions:", ", ".join(f"{y:+.4f}" for y in predictions))
    print("targets:    ", ", ".join(f"{y:+.4f}" for y in (1.0, -1.0, -1.0, 1.0)))
    if loss >= TARGET:
        print(f"the loss did not fall below {TARGET} in {STEPS} steps", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
