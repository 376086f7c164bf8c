"""Train micrograd's MLP(3, [4, 4, 1]) with the gradient exprgrad compiled.

    python examples/train_mlp.py [--data FILE.csv] [--samples 100] [--steps 300]
                                 [--rate 0.2] [--seed 7] [--micrograd]
    python examples/train_mlp.py --lecture

The network and its losses are written in mlp.expr next to this script and
compiled once by `exprgrad.load`.  By default the script trains through
`data_loss`, whose data set is an argument of any length: it reads the
samples from a CSV file at run time (rows `x0, x1, x2, label`, a header line
allowed), so one compiled module serves every data set.  `--data FILE.csv`
names the file; a file that does not exist yet is first written with a toy
data set (two interleaving half moons in x0, x1, a third feature of noise,
labels +1 and -1), and without `--data` that toy set goes to a temporary
file.  The initial weights are micrograd's (`random.seed(seed)` then
`nn.MLP(3, [4, 4, 1])` draws the same numbers), and with `--micrograd` (when
the micrograd package is installed) micrograd's own `nn.MLP` trains beside
it, the micrograd way, and every step's loss must be micrograd's.

`--lecture` trains `loss` instead, the lecture's four samples compiled into
the module, until the loss falls below 0.01, and prints the predictions.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import sys
import tempfile
from pathlib import Path

import exprgrad
from exprgrad.datafiles import DataFileError, read_data

LECTURE_STEPS, LECTURE_RATE, LECTURE_TARGET = 200, 0.02, 0.01
FEATURES = 3


# --- the data set ------------------------------------------------------------------
def toy_data(n: int, seed: int = 0) -> list[list[float]]:
    """Rows `x0, x1, x2, label`: two interleaving half moons in (x0, x1),
    labels +1 and -1, and x2 a feature of pure noise the network must learn
    to ignore."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        t = math.pi * rng.random()
        if i % 2:
            x0, x1, label = math.cos(t), math.sin(t), -1.0
        else:
            x0, x1, label = 1 - math.cos(t), 0.5 - math.sin(t), 1.0
        rows.append([x0 + rng.gauss(0, 0.1), x1 + rng.gauss(0, 0.1), rng.gauss(0, 0.5), label])
    return rows


def write_data(path: Path, rows: list[list[float]]) -> None:
    with path.open("w", newline="") as file:
        out = csv.writer(file)
        out.writerow(["x0", "x1", "x2", "label"])
        out.writerows(rows)


def load_data(path: Path) -> tuple[list[list[float]], list[float]]:
    """The samples X[n][3] and their labels y[n] from a CSV file."""
    rows = read_data(str(path))
    if not rows or not isinstance(rows[0], list) or len(rows[0]) != FEATURES + 1:
        raise DataFileError(f"{path}: expected {FEATURES + 1} columns (x0, x1, x2, label)")
    return [row[:FEATURES] for row in rows], [row[FEATURES] for row in rows]


# --- the network's parameters -------------------------------------------------------
def initial_parameters(seed: int = 3):
    """As micrograd.nn draws them after `random.seed(seed)`: weights uniform
    in [-1, 1] neuron by neuron, biases 0; the arguments W1[4][3], b1[4],
    W2[4][4], b2[4], w3[4], b3 of mlp.expr."""
    rng = random.Random(seed)

    def weights(rows: int, cols: int):
        return [[rng.uniform(-1, 1) for _ in range(cols)] for _ in range(rows)]

    W1, W2, w3 = weights(4, 3), weights(4, 4), weights(1, 4)[0]
    return [W1, [0.0] * 4, W2, [0.0] * 4, w3, 0.0]


def micrograd_parameters(mlp):
    """micrograd's weights as the arguments of mlp.expr's functions."""
    params = []
    for layer in mlp.layers:
        params.append([[w.data for w in n.w] for n in layer.neurons])
        params.append([n.b.data for n in layer.neurons])
    params[4], params[5] = params[4][0], params[5][0]  # one output neuron: w3[4], b3
    return params


def descend(value, grad, rate: float):
    """value - rate * grad, for a float or nested lists of floats."""
    if isinstance(value, list):
        return [descend(v, g, rate) for v, g in zip(value, grad)]
    return value - rate * grad


# --- training --------------------------------------------------------------------------
class Micrograd:
    """micrograd's own MLP, trained the micrograd way beside the compiled one."""

    def __init__(self, seed: int):
        from micrograd.nn import MLP
        random.seed(seed)
        self.mlp = MLP(FEATURES, [4, 4, 1])

    def step(self, X, y, rate: float) -> float:
        loss = sum(((self.mlp(x) - target) ** 2 for x, target in zip(X, y)), 0.0)
        self.mlp.zero_grad()
        loss.backward()
        for p in self.mlp.parameters():
            p.data -= rate * p.grad
        return loss.data


def train_on_data(model, X, y, steps: int, rate: float, seed: int, with_micrograd: bool) -> int:
    params = initial_parameters(seed)
    reference = Micrograd(seed) if with_micrograd else None
    if reference is not None and micrograd_parameters(reference.mlp) != params:
        print("micrograd drew other initial weights", file=sys.stderr)
        return 1
    n = len(X)
    step_rate = rate / n  # data_loss sums over the samples; the step follows the mean
    losses = []
    for step in range(steps):
        loss, grads = model.data_loss_grad(*params, X, y)
        losses.append(loss / n)
        if reference is not None:
            theirs = reference.step(X, y, step_rate)
            if not math.isclose(loss, theirs, rel_tol=1e-9, abs_tol=1e-12):
                print(f"step {step}: exprgrad's loss {loss!r} is not micrograd's {theirs!r}",
                      file=sys.stderr)
                return 1
        if step % max(1, steps // 10) == 0 or step == steps - 1:
            print(f"step {step:3d}  loss {loss / n:.6f}")
        params = [descend(p, g, step_rate) for p, g in zip(params, grads)]
    right = sum(1 for x, label in zip(X, y) if (model.mlp(x, *params) > 0) == (label > 0))
    print(f"accuracy: {right}/{n} samples")
    if reference is not None:
        print(f"micrograd: the same loss at all {steps} steps")
    if steps > 1 and not losses[-1] < losses[0]:
        print("the loss did not decrease", file=sys.stderr)
        return 1
    return 0


def train_lecture(model) -> int:
    """The lecture's four samples, compiled into `loss`."""
    params = initial_parameters()
    for step in range(LECTURE_STEPS):
        loss, grads = model.loss_grad(*params)
        print(f"step {step:3d}  loss {loss:.6f}")
        if loss < LECTURE_TARGET:
            break
        params = [descend(p, g, LECTURE_RATE) for p, g in zip(params, grads)]
    predictions = model.predict(*params)
    print("predictions:", ", ".join(f"{y:+.4f}" for y in predictions))
    print("targets:    ", ", ".join(f"{y:+.4f}" for y in (1.0, -1.0, -1.0, 1.0)))
    if loss >= LECTURE_TARGET:
        print(f"the loss did not fall below {LECTURE_TARGET} in {LECTURE_STEPS} steps",
              file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, metavar="FILE.csv",
                        help="the samples (written with the toy data set if missing)")
    parser.add_argument("--samples", type=int, default=100,
                        help="size of the toy data set written for a missing file")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rate", type=float, default=0.2, help="step size on the mean loss")
    parser.add_argument("--seed", type=int, default=7, help="of the initial weights")
    parser.add_argument("--micrograd", action="store_true",
                        help="train micrograd's nn.MLP beside it and compare every step")
    parser.add_argument("--lecture", action="store_true",
                        help="train on the lecture's four samples compiled into mlp.expr")
    args = parser.parse_args(argv)
    model = exprgrad.load(Path(__file__).with_name("mlp.expr"))
    if args.lecture:
        return train_lecture(model)
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = args.data or Path(folder) / "moons.csv"
            if not path.exists():
                write_data(path, toy_data(args.samples))
                print(f"wrote {args.samples} samples to {path}" if args.data else
                      f"a toy data set of {args.samples} samples")
            X, y = load_data(path)
    except DataFileError as error:
        print(error, file=sys.stderr)
        return 1
    return train_on_data(model, X, y, args.steps, args.rate, args.seed, args.micrograd)


if __name__ == "__main__":
    sys.exit(main())
