"""Mutation score per module from mutmut's results in mutants/ (run by `make mutation`).

mutmut keeps, per mutated source file, ``mutants/<path>.meta`` with each mutant's test exit
code: 1 (a test failed: killed), 0 (every test passed: survived), None (not run yet), 33 (no test
in the selection reaches the mutated function), timeouts (-24/36) and suspicious results as
other codes. The score is killed ÷ (killed + survived + no tests): a mutant no selected test
reaches counts against the module, because nothing would notice it.

    python tools/mutation_report.py            # table per module
    python tools/mutation_report.py --survivors # also list surviving mutant names
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

KILLED = {1, 3, -24, 24, 36, 152, 255}  # failed, interrupted by a failure, timed out


def outcome(code: int | None) -> str:
    if code is None:
        return "not run"
    if code == 0:
        return "survived"
    if code == 33:
        return "no tests"
    if code == 34:
        return "skipped"
    return "killed" if code in KILLED or code > 0 else "suspicious"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--survivors", action="store_true")
    parser.add_argument("--root", default="mutants")
    args = parser.parse_args()
    root = Path(args.root)
    rows = []
    for meta in sorted(root.rglob("*.py.meta")):
        codes = json.loads(meta.read_text()).get("exit_code_by_key", {})
        if not codes:
            continue
        counts = Counter(outcome(c) for c in codes.values())
        judged = counts["killed"] + counts["survived"] + counts["no tests"]
        score = counts["killed"] / judged if judged else 0.0
        module = str(meta.relative_to(root)).removesuffix(".meta")
        rows.append((module, len(codes), counts, score))
        if args.survivors:
            for name, code in sorted(codes.items()):
                if outcome(code) == "survived":
                    print(f"survived: {name}")
    print(f"{'module':55} {'mutants':>7} {'killed':>6} {'surv.':>5} {'no test':>7} "
          f"{'not run':>7} {'score':>6}")
    for module, total, counts, score in rows:
        print(f"{module:55} {total:7} {counts['killed']:6} {counts['survived']:5} "
              f"{counts['no tests']:7} {counts['not run']:7} {score:6.0%}")


if __name__ == "__main__":
    main()
