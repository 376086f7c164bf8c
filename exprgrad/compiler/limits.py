"""Resource limits, so that no source text can exhaust memory or hang the
compiler.  Exceeding one is a `LimitError` that names the limit."""

MAX_SOURCE_BYTES = 50_000_000  # a source file
MAX_DAG_NODES = 20_000_000  # nodes of the unrolled op DAG
MAX_RANGE = 10_000_000  # elements of one range(...) or array
MAX_CALL_DEPTH = 100  # user functions calling user functions
MAX_COMPREHENSION_DEPTH = 50  # comprehensions nested in comprehensions
MAX_ARRAY_RANK = 32  # dimensions of one array (w[2][3] has 2)
