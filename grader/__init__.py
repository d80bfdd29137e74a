"""nngrader.

`grader.check()` is the student's self-check from Python (grader/api.py); it is imported on
first use, so `import grader` stays as cheap as the CLI's start-up needs.
"""
__version__ = "0.1.0"

__all__ = ["check", "Report", "CheckError", "__version__"]


def __getattr__(name: str):
    if name in ("check", "Report", "CheckError"):
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'grader' has no attribute {name!r}")
