"""d2l-grade. In a notebook: `import d2lgrade` then `d2lgrade.check("7.3/3")` (see d2lgrade/selfcheck.py).

Importing the package stays cheap: the checks load only when `check` is called.
"""


def check(selector: str, **kwargs):
    """Check one exercise ("7.3/3") or a section ("7.3") against the definitions live in this kernel."""
    from d2lgrade.selfcheck import check as run
    return run(selector, **kwargs)


def check_all(section: str, **kwargs):
    """Check every exercise of a section ("7.3") against the definitions live in this kernel."""
    from d2lgrade.selfcheck import check_all as run
    return run(section, **kwargs)
