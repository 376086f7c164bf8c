"""DAG → DAG passes.  `fold` runs as every node is built; the others run on a
finished graph."""
