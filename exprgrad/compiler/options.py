"""What the compiler is asked to optimise: one object the pipeline owns.

`pipeline.front_end(source, options=...)` builds the program's DAG with
these options; the DAG keeps them (`Graph.options`), so every node built
later (reverse mode, checks) and the code generator see the same choice.
Turning a pass off never changes a result, only how much work the generated
code does (tests/test_passes.py compares the two), which is what
`bench/passes.py` measures.

DAG passes, applied by `Graph.add` as each node is built (`passes.fold`):
  fold        an operation on constants is computed at compile time
  identities  exact algebraic identities: x*1, x+0, x-0, x/1, --x, x**0,
              pow with an integer exponent as ipow, a+b and b+a as one node,
              where() on a known condition or equal branches
  strength    exact strength reduction (`passes.strength`): x**2 → x*x,
              x**-1 → 1/x, x / 2**k → x * 2**-k
Code generation:
  inline      a value used once is written into its user instead of being
              named by a statement of its own

Hash-consing (equal nodes are one node) is not optional: it is how the DAG
is built.  Only the nodes the results need are emitted (dead code is never
generated), so neither needs a pass of its own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    fold: bool = True
    identities: bool = True
    strength: bool = True
    inline: bool = True


DEFAULT = Options()
UNOPTIMISED = Options(fold=False, identities=False, strength=False, inline=False)
