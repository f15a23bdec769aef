"""Are two netlists the same circuit? A Yosys equivalence check of two Verilog texts.

Used to show that a refactor changed no behaviour (the Verilog may differ in names and
attributes only), and by mutation testing to tell equivalent mutants apart. Both designs are
read into separate designs, elaborated (``proc``), flattened, their memories turned into
flip-flops (``memory -nomap; memory_map``: use small configurations), and compared in two
steps:

1. ``equiv_make`` pairs the nets of the two designs by name, ``equiv_simple`` and
   ``equiv_induct`` prove every pair by induction over ``depth`` steps; ``equiv_status``
   says whether every pair is proven. Renamed signals stay unpaired (they are proven through
   the pairs that remain: outputs and the registers that kept their names). A full proof
   here holds for every reachable state: ``method == "induction"``.
2. Otherwise (the induction does not close, or the designs differ): a miter of the two
   (``miter -equiv``, outputs compared every cycle) is checked by bounded model checking from
   reset values (``init``) for ``depth`` cycles with every input free (reset included).
   A failure there is a real difference (``equivalent`` False, with Yosys' counterexample in
   the log); a pass is ``method == "bounded"``: no difference within ``depth`` cycles.
"""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from verif.tools import run_yosys


@dataclass
class EquivResult:
    equivalent: bool
    method: str  # "identical" (same text), "induction" or "bounded"
    depth: int
    unproven: int  # $equiv cells equiv_induct left open (step 1)
    log: str


def _read(path: str, top: str, name: str) -> str:
    return (f"read_verilog -sv {path}\nhierarchy -top {top}\nproc\nflatten\nmemory -nomap\nmemory_map\n"
            f"opt_clean\nrename {top} {name}\n")


def ports(verilog: str, top: str = "top") -> list[tuple[str, str, str]]:
    """``(direction, range, name)`` of module ``top``'s ports, in order."""
    m = re.search(rf"^module \\?{re.escape(top)}\b.*?^endmodule", verilog, re.S | re.M)
    if not m:
        raise ValueError(f"no module {top} in the Verilog")
    return re.findall(r"^\s*(input|output|inout)\s+(?:wire\s+|reg\s+|signed\s+)*(\[[^\]]*\])?\s*(\S+?);",
                      m.group(0), re.M)


def equivalent(gold: str, gate: str, *, top: str = "top", depth: int = 20, induction: bool = True) -> EquivResult:
    """Compare the Verilog texts ``gold`` and ``gate`` (top module ``top`` in both);
    ``induction=False`` skips step 1 (bounded check only).

    Designs whose ports differ (names, directions, widths) are not equivalent. Raises
    ``RuntimeError`` if Yosys cannot read or compare them.
    """
    if gold == gate:
        return EquivResult(True, "identical", 0, 0, "")
    # Nets are paired by name: a port missing on one side would go unchecked.
    if sorted(ports(gold, top)) != sorted(ports(gate, top)):
        return EquivResult(False, "ports", 0, 0, f"ports differ:\n{ports(gold, top)}\n{ports(gate, top)}")
    with tempfile.TemporaryDirectory(prefix="equiv-") as t:
        tmp = Path(t)
        (tmp / "gold.v").write_text(gold)
        (tmp / "gate.v").write_text(gate)
        load = (_read("gold.v", top, "gold") + "design -stash gold\n"
                + _read("gate.v", top, "gate") + "design -stash gate\n"
                + "design -copy-from gold -as gold gold\ndesign -copy-from gate -as gate gate\n")
        log1, unproven = "", -1
        if induction:
            rc, log1 = run_yosys(load + f"equiv_make gold gate equiv\nhierarchy -top equiv\n"
                                 f"equiv_simple -seq {depth}\nequiv_induct -seq {depth}\nequiv_status\n", tmp)
            m = re.search(r"Found (\d+) \$equiv cells.*?Of those cells (\d+) are proven and (\d+) are unproven",
                          log1, re.S)
            if rc != 0 or not m:
                raise RuntimeError(f"yosys equivalence setup failed:\n{log1[-3000:]}")
            unproven = int(m.group(3))
            if unproven == 0:
                return EquivResult(True, "induction", depth, 0, log1)
        rc, log2 = run_yosys(load + "miter -equiv -flatten -make_assert -ignore_gold_x gold gate miter\n"
                             "hierarchy -top miter\n"
                             f"sat -verify -prove-asserts -set-init-undef -set-def-inputs -seq {depth} "
                             f"-show-ports miter\n", tmp)
        if rc != 0 and "SAT proof finished - model found" not in log2 and "FAIL" not in log2:
            raise RuntimeError(f"yosys miter check failed:\n{log2[-3000:]}")
        return EquivResult(rc == 0, "bounded", depth, unproven, log1 + log2)


def main(argv=None) -> int:
    """``python -m verif.equiv GOLD.v GATE.v [--top top] [--depth 20]``: exit 0 when equivalent."""
    import argparse
    p = argparse.ArgumentParser(prog="python -m verif.equiv", description=main.__doc__)
    p.add_argument("gold", type=Path)
    p.add_argument("gate", type=Path)
    p.add_argument("--top", default="top")
    p.add_argument("--depth", type=int, default=20)
    args = p.parse_args(argv)
    r = equivalent(args.gold.read_text(), args.gate.read_text(), top=args.top, depth=args.depth)
    print(f"{'equivalent' if r.equivalent else 'DIFFERENT'} ({r.method}, depth {r.depth})")
    return 0 if r.equivalent else 1


if __name__ == "__main__":
    raise SystemExit(main())
