"""Train a micrograd-style MLP with exprgrad.nn, eagerly and then compiled.

    python examples/train_value.py [--steps 40] [--points 30] [--hidden 8] [--micrograd] [--no-gc]

1. Eager, exactly as in micrograd's demo: every step builds the loss graph
   out of `Value`s, calls `backward()` and updates the parameters.
2. Compiled: the loss graph is recorded once and `exprgrad.compile_value`
   turns it into straight-line Python computing the loss and its gradient
   with respect to the parameters; every step then just calls that function.

Both start from the same weights (same random seed), so they print the same
losses; the end shows the time per step of each and the speed-up.  With
`--micrograd`, the eager loop also runs on the micrograd package.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import time

import exprgrad
from exprgrad import Value, nn


def moons(n: int, seed: int = 0):
    """Two interleaving half circles with a little noise, labels ±1 (the
    data set of micrograd's demo, without scikit-learn)."""
    rng = random.Random(seed)
    points, labels = [], []
    for i in range(n):
        t = math.pi * rng.random()
        if i % 2:
            x, y, label = math.cos(t), math.sin(t), -1.0
        else:
            x, y, label = 1 - math.cos(t), 0.5 - math.sin(t), 1.0
        points.append([x + rng.gauss(0, 0.1), y + rng.gauss(0, 0.1)])
        labels.append(label)
    return points, labels


def svm_loss(model, points, labels, value_type=Value):
    """micrograd demo's loss: mean hinge loss plus L2 regularisation."""
    scores = [model(x) for x in points]
    hinge = sum(((1 + -y * s).relu() for y, s in zip(labels, scores)), value_type(0.0))
    l2 = sum((p * p for p in model.parameters()), value_type(0.0))
    return hinge * (1.0 / len(points)) + 1e-4 * l2


def learning_rate(step: int, steps: int) -> float:
    return 1.0 - 0.9 * step / steps


def train_eager(model, points, labels, steps, value_type=Value):
    losses = []
    for k in range(steps):
        loss = svm_loss(model, points, labels, value_type)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= learning_rate(k, steps) * p.grad
        losses.append(loss.data)
    return losses


def compile_loss(model, points, labels):
    """Record the loss once and compile it: `loss_grad(*params) -> (loss, grads)`."""
    return exprgrad.compile_value(svm_loss(model, points, labels), model.parameters(),
                                  name="loss_grad")


def train_compiled(model, loss_grad, steps):
    """The same training on plain floats through the generated function."""
    params = model.parameters()
    values = [p.data for p in params]
    losses = []
    for k in range(steps):
        loss, grads = loss_grad(*values)
        rate = learning_rate(k, steps)
        values = [v - rate * g for v, g in zip(values, grads)]
        losses.append(loss)
    for p, v in zip(params, values):  # hand the trained weights back to the model
        p.data = v
    return losses


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--points", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=8, help="neurons per hidden layer")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--micrograd", action="store_true",
                        help="also time the eager loop on the micrograd package")
    parser.add_argument("--no-gc", action="store_true",
                        help="turn Python's cycle collector off while timing")
    args = parser.parse_args()
    if args.no_gc:
        gc.disable()
    points, labels = moons(args.points)

    def fresh_model(module=nn):
        random.seed(args.seed)
        return module.MLP(2, [args.hidden, args.hidden, 1])

    eager_losses, eager_time = timed(train_eager, fresh_model(), points, labels, args.steps)
    model = fresh_model()
    loss_grad, compile_time = timed(compile_loss, model, points, labels)
    compiled_losses, compiled_time = timed(train_compiled, model, loss_grad, args.steps)

    print(f"{'step':>4}  {'eager loss':>12}  {'compiled loss':>13}")
    for k in range(0, args.steps, max(1, args.steps // 8)):
        print(f"{k:>4}  {eager_losses[k]:12.6f}  {compiled_losses[k]:13.6f}")
    print(f"{'last':>4}  {eager_losses[-1]:12.6f}  {compiled_losses[-1]:13.6f}")
    accuracy = sum((model(x).data > 0) == (y > 0) for x, y in zip(points, labels)) / len(points)
    print(f"largest loss difference: "
          f"{max(abs(a - b) for a, b in zip(eager_losses, compiled_losses)):.2e}; "
          f"training accuracy {accuracy:.0%}")
    print(f"generated function: {loss_grad.source.count(chr(10))} lines, "
          f"compiled in {compile_time:.2f} s (once)")
    per_eager = eager_time / args.steps
    per_compiled = compiled_time / args.steps
    print(f"eager (exprgrad.Value): {per_eager * 1e3:8.2f} ms/step")
    print(f"compiled:               {per_compiled * 1e3:8.2f} ms/step   "
          f"speed-up x{per_eager / per_compiled:.1f}")
    if args.micrograd:
        from micrograd import engine, nn as micro_nn
        micro_losses, micro_time = timed(train_eager, fresh_model(micro_nn), points, labels,
                                         args.steps, engine.Value)
        per_micro = micro_time / args.steps
        print(f"eager (micrograd):      {per_micro * 1e3:8.2f} ms/step   "
              f"exprgrad.Value is x{per_micro / per_eager:.1f} as fast; "
              f"last loss {micro_losses[-1]:.6f}")


if __name__ == "__main__":
    main()
