"""Peer solver for Zonal's vector bin packing suite.

Reads one instance as JSON on stdin and writes one result as JSON on stdout. The formulation
is the same for both peers, so their answers are comparable with each other and with Zonal's:

  item types t with demand d[t][k] and multiplicity q[t]; U candidate bins (U = Zonal's own
  answer, a valid upper bound, given as "max_bins")
  x[t][b] integer in [0, q[t]]   copies of type t in bin b
  y[b]    binary                 bin b is used
  sum_b x[t][b] = q[t]                          every item is packed
  sum_t d[t][k] x[t][b] <= C[k] y[b]            capacity, every dimension k and bin b
  y[b] >= y[b+1]                                symmetry breaking (identical bins)
  minimise sum_b y[b]

Usage: python vbp.py --solver ortools|highspy < instance.json
Input: {"name", "dims", "capacity": [..], "items": [[..], ..], "max_bins", "time_limit_s",
"threads"}. Output: {"solver", "status" (optimal|feasible|infeasible|unknown), "bins" (or
null), "bound", "time_s"}.

Only the solver that is asked for is imported: OR-Tools and highspy bundle incompatible
native libraries, so each runs in its own virtualenv and its own process.
"""

import argparse
import json
import math
import os
import sys
import time


def item_types(items):
    counts = {}
    order = []
    for it in items:
        key = tuple(it)
        if key not in counts:
            counts[key] = 0
            order.append(key)
        counts[key] += 1
    return [list(k) for k in order], [counts[k] for k in order]


def solve_ortools(types, qty, cap, max_bins, time_limit, threads):
    from ortools.sat.python import cp_model

    m = cp_model.CpModel()
    nb = max_bins
    y = [m.NewBoolVar(f"y{b}") for b in range(nb)]
    x = [[m.NewIntVar(0, qty[t], f"x{t}_{b}") for b in range(nb)] for t in range(len(types))]
    for t in range(len(types)):
        m.Add(sum(x[t]) == qty[t])
    for b in range(nb):
        for k in range(len(cap)):
            m.Add(sum(types[t][k] * x[t][b] for t in range(len(types))) <= cap[k] * y[b])
        if b + 1 < nb:
            m.Add(y[b] >= y[b + 1])
    m.Minimize(sum(y))
    s = cp_model.CpSolver()
    s.parameters.max_time_in_seconds = float(time_limit)
    s.parameters.num_workers = int(threads)
    st = s.Solve(m)
    status = {
        cp_model.OPTIMAL: "optimal",
        cp_model.FEASIBLE: "feasible",
        cp_model.INFEASIBLE: "infeasible",
    }.get(st, "unknown")
    bins = int(round(s.ObjectiveValue())) if status in ("optimal", "feasible") else None
    dual = s.BestObjectiveBound()
    bound = math.ceil(dual - 1e-6) if status != "infeasible" and math.isfinite(dual) else None
    return "cp-sat", status, bins, bound


def solve_highspy(types, qty, cap, max_bins, time_limit, threads):
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("threads", int(threads))
    h.setOptionValue("mip_rel_gap", 0.0)
    inf = highspy.kHighsInf
    nt, nb, nd = len(types), max_bins, len(cap)
    # Columns: y[b] = b, then x[t][b] = nb + t * nb + b.
    for _ in range(nb):
        h.addCol(1.0, 0.0, 1.0, 0, [], [])
    for t in range(nt):
        for _ in range(nb):
            h.addCol(0.0, 0.0, float(qty[t]), 0, [], [])
    for j in range(nb * (nt + 1)):
        h.changeColIntegrality(j, highspy.HighsVarType.kInteger)

    def xc(t, b):
        return nb + t * nb + b

    for t in range(nt):
        idx = [xc(t, b) for b in range(nb)]
        h.addRow(float(qty[t]), float(qty[t]), len(idx), idx, [1.0] * len(idx))
    for b in range(nb):
        for k in range(nd):
            idx = [b] + [xc(t, b) for t in range(nt) if types[t][k] != 0]
            val = [-float(cap[k])] + [float(types[t][k]) for t in range(nt) if types[t][k] != 0]
            h.addRow(-inf, 0.0, len(idx), idx, val)
        if b + 1 < nb:
            h.addRow(0.0, inf, 2, [b, b + 1], [1.0, -1.0])
    h.run()
    ms = h.getModelStatus()
    info = h.getInfo()
    if ms == highspy.HighsModelStatus.kOptimal:
        status = "optimal"
    elif ms == highspy.HighsModelStatus.kInfeasible:
        status = "infeasible"
    elif info.primal_solution_status == 2:
        status = "feasible"
    else:
        status = "unknown"
    bins = int(round(info.objective_function_value)) if status in ("optimal", "feasible") else None
    dual = info.mip_dual_bound
    bound = math.ceil(dual - 1e-6) if status != "infeasible" and math.isfinite(dual) else None
    return "highs", status, bins, bound


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--solver", choices=["ortools", "highspy"], required=True)
    args = ap.parse_args()
    inst = json.load(sys.stdin)
    # Native libraries print banners on file descriptor 1 (HiGHS does, before any option can
    # silence it): keep the real stdout for the result and send fd 1 to stderr meanwhile.
    result_fd = os.dup(1)
    os.dup2(2, 1)
    types, qty = item_types(inst["items"])
    solve = solve_ortools if args.solver == "ortools" else solve_highspy
    start = time.perf_counter()
    solver, status, bins, bound = solve(
        types,
        qty,
        inst["capacity"],
        int(inst["max_bins"]),
        inst["time_limit_s"],
        inst.get("threads", 1),
    )
    elapsed = time.perf_counter() - start
    with os.fdopen(result_fd, "w") as out:
        json.dump(
            {"solver": solver, "status": status, "bins": bins, "bound": bound, "time_s": elapsed},
            out,
        )


if __name__ == "__main__":
    main()
