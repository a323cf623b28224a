"""Dotted-name prefixes: which state-dict keys or parameters lie under a module name."""


def under(name: str, prefix: str) -> bool:
    """Whether ``name`` lies under the dotted ``prefix`` (whole components only).

    >>> under('body.0.rdb1.conv1.weight', 'body'), under('conv_body.weight', 'body'), under('body.0.x', 'body.0')
    (True, False, True)
    """
    return name == prefix or name.startswith(prefix + '.')


def under_any(name: str, prefixes) -> bool:
    """Whether ``name`` lies under any of ``prefixes``."""
    return any(under(name, prefix) for prefix in prefixes)
