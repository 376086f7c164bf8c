"""Resource limits, so that no source text can exhaust memory or hang the
compiler.  Exceeding one is a `LimitError` that names the limit.

The limits are chosen so that a program just under them still compiles in
well under a minute on a laptop (the compiler handles roughly 30,000 to
100,000 DAG nodes a second), and so that a program far over them is refused
as soon as the excess is visible: `range(10**9)` is refused before a single
element is built.  docs/reliability.md lists them for users.
"""

MAX_SOURCE_BYTES = 10_000_000  # characters of one source text
MAX_NAME_LENGTH = 200  # characters of one identifier
MAX_DAG_NODES = 1_000_000  # nodes of the op DAG (unrolled loops, inlined calls, adjoints)
MAX_RANGE = 1_000_000  # elements of one range(...), list, comprehension or array parameter
MAX_UNROLLED = 2_000_000  # comprehension elements unrolled in one program, all loops together
MAX_CALL_DEPTH = 100  # user functions calling user functions
MAX_COMPREHENSION_DEPTH = 50  # `for` clauses nested in one another (in one or nested comprehensions)
MAX_ARRAY_RANK = 32  # dimensions of one array (w[2][3] has 2)
MAX_SCHEDULE_STEPS = 1_000_000  # nodes the data-axis scheduler walks for one emitted function
MAX_SCHEDULE_REWALKS = 8  # past 100,000 of those steps, times the DAG's size they may be
SCHEDULE_STEPS_ALLOWED = 100_000  # steps any function may take, whatever its DAG's size
