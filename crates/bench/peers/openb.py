"""Peer solver for Zonal's openb packing: all pods of the Alibaba trace at once onto the nodes.

Reads one instance as JSON on stdin and writes one result as JSON on stdout. Both peers get
the same formulation, aggregated by pod type (equal cpu/memory/gpu demand) and by node type
(equal capacity), with one copy per physical node:

  pod types t with demand d[t][k] and count q[t]; node types j with capacity C[j][k] and
  N[j] nodes; copies c = 0..N[j]-1 of each node type
  x[t][j][c] integer in [0, min(q[t], max copies that fit)]   pods of type t on node (j, c)
             (only where type t fits an empty node of type j)
  y[j][c]    binary                                            node (j, c) is used
  sum_{j,c} x[t][j][c] = q[t]                                  every pod is placed
  sum_t d[t][k] x[t][j][c] <= C[j][k] y[j][c]                  capacity, every dimension k
  y[j][c] >= y[j][c+1]                                         symmetry (identical nodes)
  sum_{j,c} C[j][k] y[j][c] >= sum_t d[t][k] q[t]              volume (implied; helps search)
  minimise sum_{j,c} y[j][c]

Usage: python openb.py --solver ortools|highspy < instance.json
Input: {"name", "node_types": [{"capacity": [..], "count": N}, ..], "pod_types":
[{"demand": [..], "count": q}, ..], "time_limit_s", "threads"}. Output: {"solver", "status"
(optimal|feasible|infeasible|unknown), "bins" (nodes used, or null), "bound", "time_s"}.

Only the solver that is asked for is imported (OR-Tools and highspy bundle incompatible
native libraries and run in separate virtualenvs and processes).
"""

import argparse
import json
import math
import os
import sys
import time


def columns(inst):
    """The (t, j, c, upper bound) of every x column, and the node copies (j, c)."""
    pods = inst["pod_types"]
    nodes = inst["node_types"]
    cols = []
    copies = []
    for j, n in enumerate(nodes):
        cap = n["capacity"]
        fitting = []
        for t, p in enumerate(pods):
            d = p["demand"]
            if all(d[k] <= cap[k] for k in range(len(cap))):
                most = min(cap[k] // d[k] for k in range(len(cap)) if d[k] > 0) if any(d) else p["count"]
                fitting.append((t, min(p["count"], most)))
        for c in range(n["count"]):
            copies.append((j, c))
            for t, ub in fitting:
                cols.append((t, j, c, ub))
    return cols, copies


def solve_ortools(inst, time_limit, threads):
    from ortools.sat.python import cp_model

    pods, nodes = inst["pod_types"], inst["node_types"]
    dims = len(nodes[0]["capacity"])
    cols, copies = columns(inst)
    m = cp_model.CpModel()
    y = {jc: m.NewBoolVar(f"y{jc[0]}_{jc[1]}") for jc in copies}
    x = [m.NewIntVar(0, ub, f"x{t}_{j}_{c}") for (t, j, c, ub) in cols]
    per_pod = [[] for _ in pods]
    per_node = {jc: [] for jc in copies}
    for v, (t, j, c, _) in zip(x, cols):
        per_pod[t].append(v)
        per_node[(j, c)].append((t, v))
    for t, p in enumerate(pods):
        m.Add(sum(per_pod[t]) == p["count"])
    for (j, c), terms in per_node.items():
        cap = nodes[j]["capacity"]
        for k in range(dims):
            ts = [(v, pods[t]["demand"][k]) for t, v in terms if pods[t]["demand"][k] != 0]
            if ts:
                m.Add(cp_model.LinearExpr.WeightedSum([v for v, _ in ts], [w for _, w in ts]) <= cap[k] * y[(j, c)])
        if c + 1 < nodes[j]["count"]:
            m.Add(y[(j, c)] >= y[(j, c + 1)])
    ys = [y[jc] for jc in copies]
    for k in range(dims):
        need = sum(p["demand"][k] * p["count"] for p in pods)
        m.Add(cp_model.LinearExpr.WeightedSum(ys, [nodes[j]["capacity"][k] for (j, _) in copies]) >= need)
    m.Minimize(sum(ys))
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


def solve_highspy(inst, time_limit, threads):
    import highspy
    import numpy as np

    pods, nodes = inst["pod_types"], inst["node_types"]
    dims = len(nodes[0]["capacity"])
    cols, copies = columns(inst)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("threads", int(threads))
    h.setOptionValue("mip_rel_gap", 0.0)
    inf = highspy.kHighsInf
    ny, nx = len(copies), len(cols)
    # Columns: y[(j, c)] first (index in `copies`), then x in `cols` order.
    ncol = ny + nx
    cost = np.concatenate([np.ones(ny), np.zeros(nx)])
    lower = np.zeros(ncol)
    upper = np.concatenate([np.ones(ny), np.array([float(ub) for (_, _, _, ub) in cols])])
    h.addVars(ncol, lower, upper)
    h.changeColsCost(ncol, np.arange(ncol, dtype=np.int32), cost)
    h.changeColsIntegrality(
        ncol, np.arange(ncol, dtype=np.int32), np.array([highspy.HighsVarType.kInteger] * ncol)
    )
    copy_index = {jc: i for i, jc in enumerate(copies)}
    rows_lo, rows_hi, starts, index, value = [], [], [], [], []

    def row(lo, hi, idx, val):
        rows_lo.append(lo)
        rows_hi.append(hi)
        starts.append(len(index))
        index.extend(idx)
        value.extend(val)

    per_pod = [[] for _ in pods]
    per_node = [[] for _ in copies]
    for i, (t, j, c, _) in enumerate(cols):
        per_pod[t].append(ny + i)
        per_node[copy_index[(j, c)]].append((t, ny + i))
    for t, p in enumerate(pods):
        row(float(p["count"]), float(p["count"]), per_pod[t], [1.0] * len(per_pod[t]))
    for b, (j, c) in enumerate(copies):
        cap = nodes[j]["capacity"]
        for k in range(dims):
            terms = [(col, float(pods[t]["demand"][k])) for t, col in per_node[b] if pods[t]["demand"][k] != 0]
            if terms:
                row(-inf, 0.0, [b] + [col for col, _ in terms], [-float(cap[k])] + [w for _, w in terms])
        if c + 1 < nodes[j]["count"]:
            row(0.0, inf, [b, b + 1], [1.0, -1.0])
    for k in range(dims):
        need = float(sum(p["demand"][k] * p["count"] for p in pods))
        row(need, inf, list(range(ny)), [float(nodes[j]["capacity"][k]) for (j, _) in copies])
    h.addRows(
        len(rows_lo),
        np.array(rows_lo),
        np.array(rows_hi),
        len(index),
        np.array(starts, dtype=np.int32),
        np.array(index, dtype=np.int32),
        np.array(value),
    )
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
    # Native libraries print banners on file descriptor 1: keep the real stdout for the
    # result and send fd 1 to stderr meanwhile.
    result_fd = os.dup(1)
    os.dup2(2, 1)
    solve = solve_ortools if args.solver == "ortools" else solve_highspy
    start = time.perf_counter()
    solver, status, bins, bound = solve(inst, inst["time_limit_s"], inst.get("threads", 1))
    elapsed = time.perf_counter() - start
    with os.fdopen(result_fd, "w") as out:
        json.dump(
            {"solver": solver, "status": status, "bins": bins, "bound": bound, "time_s": elapsed},
            out,
        )


if __name__ == "__main__":
    main()
