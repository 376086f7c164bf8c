"""DAG → DAG rewrites, applied by `Graph.add` as every node is built:
`fold` (constants and identities) and `strength`, each switched by
`compiler.options.Options`."""
