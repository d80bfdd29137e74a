"""The box's harness.py: python -I -S -B harness.py plan.json [LIBDIR ...]

Puts the nnharness package beside it and numpy's folder (LIBDIR) on sys.path, then runs the
plan. With -I the script's own folder is not on sys.path, and it is taken off again once
the package is imported, so a student module can never shadow or be shadowed by it.
"""
import os
import sys

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:0] = sys.argv[2:]
    sys.path.insert(0, here)
    from nnharness.process import main
    sys.path.remove(here)
    main(sys.argv[1])
