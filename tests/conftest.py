import sys
from pathlib import Path

# builders.py lives next to the tests; make it importable as a plain module.
sys.path.insert(0, str(Path(__file__).resolve().parent))
