"""Time `nngrader similarity` on a synthetic class of 1000 disguised copies.

    python bench/similarity.py [--n 1000] [--repeats 3] [--keep DIR] [--json FILE]

Builds N submissions from the test fixtures (tests/fixtures/correct, buggy and
similarity/class), each a mutated copy of one of them: identifiers renamed consistently,
methods and classes shuffled, numeric constants changed, and a few statements inserted
(a debug print) or dropped, with a seeded generator so every run builds the same class.
Then runs `nngrader similarity DIR --template tests/fixtures/similarity/template.py` as a
fresh process (start-up included) and reports the median wall time, next to the wall time
of `python -c "import numpy"` measured in the same run (the machine is shared, so the
ratio travels better than seconds), and the CPU seconds the command used. It also reports
how many pairs were flagged within a lineage (mutants of the same fixture, or of fixtures
that are themselves copies: a buggy fixture and the correct one it was patched from, ana's
solution and its disguised copies) and across lineages (unrelated code: should be ~0).
"""
from __future__ import annotations

import argparse
import ast
import csv
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
TEMPLATE = FIXTURES / "similarity" / "template.py"
KEEP_NAMES = {"self", "cls", "np", "numpy", "sys", "pickle", "print", "range", "len"}


def bases() -> list[Path]:
    """Solutions to disguise: every fixture but the bare skeleton (a copy of the template
    shares nothing once the template is removed, so it cannot be a found copy)."""
    found = [p for folder in ("correct", "buggy", "similarity/class")
             for p in sorted((FIXTURES / folder).glob("*.py")) if p.stem != "hugo_template_only"]
    if not found:
        sys.exit(f"bench: no fixtures under {FIXTURES}")
    return found


class Mutate(ast.NodeTransformer):
    """One disguise: consistent renames, shuffled definitions, changed constants and a few
    inserted or dropped statements."""

    def __init__(self, rng: random.Random, bound: set[str]):
        self.rng = rng
        self.names = {n: f"{n}_{rng.randrange(10**4)}" for n in bound if n not in KEEP_NAMES}

    def visit_Name(self, node):
        node.id = self.names.get(node.id, node.id)
        return node

    def visit_arg(self, node):
        node.arg = self.names.get(node.arg, node.arg)
        return node

    def visit_Attribute(self, node):
        self.generic_visit(node)
        node.attr = self.names.get(node.attr, node.attr)
        return node

    def visit_Constant(self, node):
        if isinstance(node.value, float) and self.rng.random() < 0.5:
            node.value = round(node.value * self.rng.uniform(0.5, 2.0), 4)
        return node

    def body(self, stmts: list) -> list:
        out = []
        for s in stmts:
            roll = self.rng.random()
            if roll < 0.04 and len(stmts) > 2:
                continue  # dropped
            out.append(s)
            if roll > 0.93:
                out.append(ast.parse(f"print('checkpoint', {self.rng.randrange(100)})").body[0])
        return out or stmts

    def visit_FunctionDef(self, node):
        self.generic_visit(node)
        node.name = self.names.get(node.name, node.name)
        node.body = self.body(node.body)
        return node

    def visit_ClassDef(self, node):
        self.generic_visit(node)
        self.rng.shuffle(node.body)
        return node

    def visit_Module(self, node):
        self.generic_visit(node)
        classes = [n for n in node.body if isinstance(n, ast.ClassDef)]
        self.rng.shuffle(classes)
        it = iter(classes)
        node.body = [next(it) if isinstance(n, ast.ClassDef) else n for n in node.body]
        return node


def bound_names(tree: ast.AST) -> set[str]:
    names = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
            names.add(n.id)
        elif isinstance(n, ast.arg):
            names.add(n.arg)
        elif isinstance(n, ast.Attribute) and not isinstance(n.ctx, ast.Load):
            names.add(n.attr)
        elif isinstance(n, ast.FunctionDef) and not n.name.startswith("__"):
            names.add(n.name)
    return names


def mutant(source: str, seed: int) -> str:
    tree = ast.parse(source)
    rng = random.Random(seed)
    tree = Mutate(rng, bound_names(tree)).visit(tree)
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def build_class(n: int, folder: Path) -> dict[str, str]:
    """n mutants in folder; returns id -> the base it came from."""
    pool = [p for p in bases() if can_parse(p)]
    folder.mkdir(parents=True, exist_ok=True)
    origin = {}
    for k in range(n):
        base = pool[k % len(pool)]
        sid = f"m{k:04d}"
        (folder / f"{sid}.py").write_text(mutant(base.read_text(encoding="utf-8"), k),
                                          encoding="utf-8")
        origin[sid] = base.stem
    return origin


def lineage() -> dict[str, str]:
    """fixture stem -> the stem of the code it was derived from (itself if original)."""
    manifest = tomllib.loads((FIXTURES / "manifest.toml").read_text(encoding="utf-8"))
    roots = {Path(k).stem: Path(v["base"]).stem for k, v in manifest["files"].items() if v.get("base")}
    roots.update({s: "ana_original" for s in ("ben_exact_copy", "cleo_renamed", "dan_reordered")})
    return {p.stem: roots.get(p.stem, p.stem) for p in bases()}


def can_parse(p: Path) -> bool:
    try:
        ast.parse(p.read_text(encoding="utf-8"))
        return True
    except SyntaxError:
        return False


def nngrader() -> list[str]:
    exe = Path(sys.executable).with_name("nngrader")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "grader"]


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its children)."""
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    wall = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="build the class here and keep it")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="nngrader-simbench-"))
    folder = args.keep or tmp / "class"
    try:
        origin = build_class(args.n, folder)
        csv_path = tmp / "similarity.csv"
        cmd = nngrader() + ["similarity", str(folder), "--template", str(TEMPLATE),
                            "--out", str(csv_path)]
        sim_s, sim_cpu, numpy_s = [], [], []
        for _ in range(args.repeats):  # interleaved, so both see the same load
            numpy_s.append(timed([sys.executable, "-c", "import numpy"])[0])
            wall, cpu = timed(cmd)
            sim_s.append(wall)
            sim_cpu.append(cpu)
        with open(csv_path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        root = lineage()
        same = sum(1 for r in rows if root[origin[r["a"]]] == root[origin[r["b"]]])
        groups: dict[str, int] = {}
        for b in origin.values():
            groups[root[b]] = groups.get(root[b], 0) + 1
        possible = sum(g * (g - 1) // 2 for g in groups.values())
        figures = {
            "n": args.n, "bases": len(groups), "repeats": args.repeats,
            "similarity_s": statistics.median(sim_s), "similarity_cpu_s": statistics.median(sim_cpu),
            "import_numpy_s": statistics.median(numpy_s),
            "ratio": statistics.median(sim_s) / statistics.median(numpy_s),
            "lineages": len(groups), "flagged": len(rows), "flagged_same_lineage": same,
            "same_lineage_pairs": possible, "flagged_across_lineages": len(rows) - same,
        }
        print(f"nngrader similarity on {args.n} submissions ({len(set(origin.values()))} fixtures, "
              f"median of {args.repeats}): {figures['similarity_s']:.2f} s wall, "
              f"{figures['similarity_cpu_s']:.2f} s CPU; "
              f"python -c 'import numpy': {figures['import_numpy_s']:.3f} s; "
              f"ratio {figures['ratio']:.0f}x")
        print(f"flagged {same} of {possible} pairs within a lineage ({len(groups)} lineages), "
              f"{len(rows) - same} across lineages")
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
