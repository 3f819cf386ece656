"""Shared by the fixture generators in tests/ref/."""


def t(x):
    """float32 values with the 9 significant digits that identify them"""
    def short(v):
        return [short(u) for u in v] if isinstance(v, list) else float("%.9g" % v)
    return short(x.detach().tolist())
