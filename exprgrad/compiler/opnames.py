"""Names of the ops that code outside the op table tests for or builds by
name (`node.op == WHERE`, `g.add(SUB, a, b)`), so a misspelt name is a
NameError rather than a rule that silently never fires.  Each is a key of
`ops.OPS` (tests/test_ops.py checks)."""

CONST, BOOL, INPUT = "const", "bool", "input"
ADD, SUB, MUL, DIV, NEG = "add", "sub", "mul", "div", "neg"
POW, IPOW = "pow", "ipow"
WHERE, NOT, AND, OR = "where", "not", "and", "or"
LT, GT, EQ = "lt", "gt", "eq"
MIN, MAX = "min", "max"
EXP, LOG, ABS = "exp", "log", "abs"  # compiler/library.py builds with them

CONSTANTS = (CONST, BOOL)  # leaves whose value is known when the graph is built

# Data axes (compiler/loops.py).
SIZE, LOOP_INDEX, LOAD = "size", "loop_index", "load"
SUM_OVER, PROD_OVER, MIN_OVER, MAX_OVER = "sum_over", "prod_over", "min_over", "max_over"
DATA_AXIS_OPS = (SIZE, LOOP_INDEX, LOAD, SUM_OVER, PROD_OVER, MIN_OVER, MAX_OVER)
