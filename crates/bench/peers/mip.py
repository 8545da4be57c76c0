"""Peer solver for any MIP that Zonal writes out as an MPS file (the chain ILP of the `zoo`
and `vnmp` suites): the peer solves exactly the formulation Zonal solved.

Reads one request as JSON on stdin and writes one result as JSON on stdout.

Usage: python mip.py --solver ortools|highspy < request.json
Input: {"name", "mps" (path of the model file), "time_limit_s", "threads", "mip_rel_gap"}.
Output: {"solver", "status" (optimal|feasible|infeasible|unbounded|unknown), "objective"
(or null), "bound" (or null), "time_s" (read + solve), "read_s", "columns", "rows",
"integer_columns", "continuous_columns"}.

* highspy: `Highs.readModel` on the file, then `run` with the time limit, thread count and
  relative gap given.
* OR-Tools: `model_builder` reads the file and hands it to CP-SAT (`Solver("sat")`) with the
  time limit, `num_workers` and `relative_gap_limit`. CP-SAT has integer variables only:
  real objective and constraint coefficients are scaled to integers by OR-Tools, and a
  continuous variable would be replaced by a scaled integer one (`mip_var_scaling`), an
  approximation. The count of continuous columns is reported so the caller can tell; Zonal's
  chain ILP has none.

Only the solver that is asked for is imported: OR-Tools and highspy bundle incompatible
native libraries, so each runs in its own virtualenv and its own process.
"""

import argparse
import json
import math
import os
import sys
import time


def finite(x):
    return x if x is not None and math.isfinite(x) else None


def solve_ortools(req):
    from ortools.linear_solver.python import model_builder as mb

    start = time.perf_counter()
    model = mb.Model()
    if not model.import_from_mps_file(req["mps"]):
        raise SystemExit(f"OR-Tools could not read the MPS file {req['mps']}")
    read_s = time.perf_counter() - start
    variables = model.get_variables()
    integer = sum(1 for v in variables if v.is_integral)
    solver = mb.Solver("sat")
    solver.set_time_limit_in_seconds(float(req["time_limit_s"]))
    solver.set_solver_specific_parameters(
        f"num_workers:{int(req['threads'])} relative_gap_limit:{float(req['mip_rel_gap'])}"
    )
    st = solver.solve(model)
    elapsed = time.perf_counter() - start
    status = {
        mb.SolveStatus.OPTIMAL: "optimal",
        mb.SolveStatus.FEASIBLE: "feasible",
        mb.SolveStatus.INFEASIBLE: "infeasible",
        mb.SolveStatus.UNBOUNDED: "unbounded",
    }.get(st, "unknown")
    has = status in ("optimal", "feasible")
    return {
        "solver": "cp-sat",
        "status": status,
        "objective": finite(solver.objective_value) if has else None,
        "bound": finite(solver.best_objective_bound) if status != "infeasible" else None,
        "time_s": elapsed,
        "read_s": read_s,
        "columns": len(variables),
        "rows": model.num_constraints,
        "integer_columns": integer,
        "continuous_columns": len(variables) - integer,
    }


def solve_highspy(req):
    import highspy

    start = time.perf_counter()
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    if h.readModel(req["mps"]) == highspy.HighsStatus.kError:
        raise SystemExit(f"HiGHS could not read the MPS file {req['mps']}")
    read_s = time.perf_counter() - start
    h.setOptionValue("time_limit", float(req["time_limit_s"]))
    h.setOptionValue("threads", int(req["threads"]))
    h.setOptionValue("mip_rel_gap", float(req["mip_rel_gap"]))
    lp = h.getLp()
    integrality = list(lp.integrality_) if len(lp.integrality_) else []
    integer = sum(1 for t in integrality if t != highspy.HighsVarType.kContinuous)
    h.run()
    elapsed = time.perf_counter() - start
    ms = h.getModelStatus()
    info = h.getInfo()
    if ms == highspy.HighsModelStatus.kOptimal:
        status = "optimal"
    elif ms == highspy.HighsModelStatus.kInfeasible:
        status = "infeasible"
    elif ms == highspy.HighsModelStatus.kUnbounded:
        status = "unbounded"
    elif info.primal_solution_status == 2:
        status = "feasible"
    else:
        status = "unknown"
    has = status in ("optimal", "feasible")
    bound = finite(info.mip_dual_bound) if integer else (finite(info.objective_function_value) if status == "optimal" else None)
    return {
        "solver": "highs",
        "status": status,
        "objective": finite(info.objective_function_value) if has else None,
        "bound": bound if status != "infeasible" else None,
        "time_s": elapsed,
        "read_s": read_s,
        "columns": lp.num_col_,
        "rows": lp.num_row_,
        "integer_columns": integer,
        "continuous_columns": lp.num_col_ - integer,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--solver", choices=["ortools", "highspy"], required=True)
    args = ap.parse_args()
    req = json.load(sys.stdin)
    # Native libraries print banners on file descriptor 1: keep the real stdout for the result
    # and send fd 1 to stderr meanwhile.
    result_fd = os.dup(1)
    os.dup2(2, 1)
    result = solve_ortools(req) if args.solver == "ortools" else solve_highspy(req)
    with os.fdopen(result_fd, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
