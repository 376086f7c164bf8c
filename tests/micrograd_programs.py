"""micrograd's own engine programs (its README example, which is also its
test_more_ops, and its test_sanity_check), written once for any
micrograd-compatible Value: micrograd's, exprgrad's, or a traced one."""


def readme_graph(a, b):
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    return g


def sanity_graph(x):
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    return y
