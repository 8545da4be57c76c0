//! The solver layer: LP/MIP models solved by HiGHS, with what good_lp hides made visible.
//!
//! Two ways to build a model, one way to solve it:
//!
//! * [`GoodLpModel`] — variables and constraints written with `good_lp` expressions (used by
//!   the INPUT chain ILP, whose constraints read best that way). good_lp's HiGHS backend
//!   creates one HiGHS column per variable in variable order, so column *i* is variable
//!   index *i*; [`GoodLpModel::solve`] takes the HiGHS model out of good_lp
//!   (`HighsProblem::try_into_inner`) and solves it here.
//! * [`LpBuilder`] — columns and sparse rows handed to `highs::RowProblem` directly (used by
//!   the FUSION LP). At MOOC scale (≈1.2 M columns) good_lp's per-expression hash maps cost
//!   more than the solve itself; the direct builder also keeps the HiGHS model alive in an
//!   [`LpSession`] so that Step 2 and the budget sweep re-solve warm (objective, column
//!   bounds changed in place; the simplex basis is kept by HiGHS).
//!
//! Every solve returns [`SolveStats`]: status, objective, best bound, gap, seconds, columns,
//! rows, simplex/IPM iterations. HiGHS output is silenced unless
//! [`SolverOptions::verbose`] is set. The MIP node count is an `int64` info value that the
//! safe `highs` API cannot read (it only reads `HighsInt` infos), so `nodes` is `None`;
//! reading it would need `unsafe` FFI, which this crate forbids.
//!
//! **LP method.** `Auto` uses HiGHS's interior-point method (`solver = "ipm"`, with
//! crossover) for LPs above [`IPM_COLUMN_THRESHOLD`] columns and HiGHS's default (dual
//! simplex) below; MIPs always use HiGHS's branch-and-cut with its own LP choice. Measured
//! on this project's machine: a 100k-column max-min LP took 1.6 s with IPM against 22.5 s
//! with simplex.

use std::time::{Duration, Instant};

use good_lp::{Constraint, Expression, ProblemVariables, SolverModel};
use highs::{HighsModelStatus, HighsSolutionStatus, Sense};
use serde::{Deserialize, Serialize};

use crate::error::PlaceError;

/// Columns above which `LpMethod::Auto` switches an LP to the interior-point method.
pub const IPM_COLUMN_THRESHOLD: usize = 50_000;

/// Which LP algorithm HiGHS uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LpMethod {
    /// IPM above [`IPM_COLUMN_THRESHOLD`] columns, HiGHS's choice below.
    #[default]
    Auto,
    Simplex,
    /// Primal simplex: for re-solves after adding columns (the basis stays primal feasible),
    /// with max-value scaling (HiGHS's `simplex_scale_strategy` 4).
    PrimalSimplex,
    Ipm,
}

/// Options of one solve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolverOptions {
    /// Wall-clock limit; the best solution found so far is returned with a `Feasible` status.
    /// HiGHS measures it over the life of its model, so in an [`LpSession`] it bounds all
    /// solves of the session together.
    pub time_limit: Option<Duration>,
    /// Relative MIP gap at which HiGHS stops (default 1e-4).
    pub mip_rel_gap: f64,
    /// HiGHS threads; HiGHS's default when `None`.
    pub threads: Option<u32>,
    pub lp_method: LpMethod,
    pub presolve: bool,
    /// Let HiGHS print its log to standard output.
    pub verbose: bool,
}

impl Default for SolverOptions {
    fn default() -> Self {
        SolverOptions {
            time_limit: None,
            mip_rel_gap: 1e-4,
            threads: None,
            lp_method: LpMethod::Auto,
            presolve: true,
            verbose: false,
        }
    }
}

impl SolverOptions {
    /// The relative MIP gap HiGHS is given: `mip_rel_gap`, or 1e-4 when that is negative or
    /// not a number.
    pub fn mip_gap(&self) -> f64 {
        if self.mip_rel_gap.is_finite() && self.mip_rel_gap >= 0.0 {
            self.mip_rel_gap
        } else {
            1e-4
        }
    }
}

/// How a solve ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SolveStatus {
    /// Proven optimal (within `mip_rel_gap` for a MIP).
    Optimal,
    /// A solution is available but a limit stopped the search before optimality was proven.
    Feasible {
        limit: String,
    },
    Infeasible,
    Unbounded,
    /// Nothing usable: a solver error, or a limit reached before any solution.
    Error {
        detail: String,
    },
}

impl SolveStatus {
    /// True when the solve produced a usable primal solution.
    pub fn has_solution(&self) -> bool {
        matches!(self, SolveStatus::Optimal | SolveStatus::Feasible { .. })
    }
}

/// What one solve did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolveStats {
    pub status: SolveStatus,
    /// Objective of the returned solution, in the model's own sense.
    pub objective: Option<f64>,
    /// Best proven bound on the objective (the MIP dual bound; the objective for an optimal LP).
    pub bound: Option<f64>,
    /// Relative gap between objective and bound (0 for an optimal LP).
    pub gap: Option<f64>,
    pub seconds: f64,
    pub columns: usize,
    pub rows: usize,
    pub simplex_iterations: u64,
    pub ipm_iterations: u64,
    /// Branch-and-bound nodes (not readable through the safe HiGHS API; see module docs).
    pub nodes: Option<u64>,
    /// True when the model had integer columns.
    pub mip: bool,
    /// The LP method actually requested from HiGHS.
    pub method: String,
}

/// A solve's statistics and, when there is one, its primal solution (column values).
#[derive(Debug, Clone)]
pub struct Solved {
    pub stats: SolveStats,
    pub values: Vec<f64>,
    /// Row duals `y` (empty without a solution). HiGHS's convention, whatever the sense:
    /// a column's reduced cost is `c_j − Σ_r y_r a_rj`; at a maximum, a column at its lower
    /// bound has a reduced cost ≤ 0.
    pub row_duals: Vec<f64>,
}

impl Solved {
    /// The solution's values, or a typed error when the solve produced none.
    pub fn require_solution(&self, what: &str) -> Result<&[f64], PlaceError> {
        match &self.stats.status {
            SolveStatus::Optimal | SolveStatus::Feasible { .. } => Ok(&self.values),
            SolveStatus::Infeasible => Err(PlaceError::Infeasible { reasons: Vec::new() }),
            SolveStatus::Unbounded => Err(PlaceError::Solver { detail: format!("{what}: the model is unbounded") }),
            SolveStatus::Error { detail } => Err(PlaceError::Solver { detail: format!("{what}: {detail}") }),
        }
    }
}

/// A column of an [`LpBuilder`] model; `Var(i)` is HiGHS column `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Var(pub usize);

/// Builds an LP/MIP column by column and row by row, straight into HiGHS's row-wise problem.
#[derive(Debug, Default)]
pub struct LpBuilder {
    problem: highs::RowProblem,
    cols: Vec<highs::Col>,
    integer: bool,
    nonzeros: usize,
}

impl LpBuilder {
    pub fn new() -> Self {
        Self::default()
    }
    /// A continuous column with bounds `[lower, upper]` (infinities allowed) and objective `cost`.
    pub fn add_var(&mut self, lower: f64, upper: f64, cost: f64) -> Var {
        let col = self.problem.add_column(cost, lower..=upper);
        self.cols.push(col);
        Var(self.cols.len() - 1)
    }
    /// An integer column.
    pub fn add_int_var(&mut self, lower: f64, upper: f64, cost: f64) -> Var {
        self.integer = true;
        let col = self.problem.add_integer_column(cost, lower..=upper);
        self.cols.push(col);
        Var(self.cols.len() - 1)
    }
    /// The row `lower ≤ Σ coef·var ≤ upper`; returns its index (for [`Solved::row_duals`]).
    pub fn add_row(&mut self, lower: f64, upper: f64, terms: impl IntoIterator<Item = (Var, f64)>) -> usize {
        let cols = &self.cols;
        let mut n = 0;
        let factors: Vec<(highs::Col, f64)> = terms
            .into_iter()
            .filter(|(_, c)| *c != 0.0)
            .map(|(v, c)| {
                n += 1;
                (cols[v.0], c)
            })
            .collect();
        self.nonzeros += n;
        let index = self.problem.num_rows();
        self.problem.add_row(lower..=upper, factors);
        index
    }
    pub fn num_cols(&self) -> usize {
        self.cols.len()
    }
    pub fn num_rows(&self) -> usize {
        self.problem.num_rows()
    }
    pub fn nonzeros(&self) -> usize {
        self.nonzeros
    }
    /// Hands the model to HiGHS; it can then be solved and re-solved.
    pub fn into_session(self, sense: Sense) -> Result<LpSession, PlaceError> {
        let columns = self.cols.len();
        let model = self
            .problem
            .try_optimise(sense)
            .map_err(|e| PlaceError::Solver { detail: format!("HiGHS rejected the model: {e:?}") })?;
        Ok(LpSession { model: Some(model), integer: self.integer, columns })
    }
}

/// A HiGHS model kept alive between solves, so that re-solves after small changes are warm.
#[derive(Debug)]
pub struct LpSession {
    model: Option<highs::Model>,
    integer: bool,
    columns: usize,
}

impl LpSession {
    fn model(&mut self) -> Result<&mut highs::Model, PlaceError> {
        self.model
            .as_mut()
            .ok_or_else(|| PlaceError::Solver { detail: "the HiGHS model was lost after a failed solve".into() })
    }
    fn col(&self, v: Var) -> Result<highs_sys::HighsInt, PlaceError> {
        // Columns are numbered in the order they were added, by the builder or `add_vars`.
        (v.0 < self.columns)
            .then(|| highs_sys::HighsInt::try_from(v.0).ok())
            .flatten()
            .ok_or_else(|| PlaceError::Solver { detail: format!("no column {}", v.0) })
    }
    #[allow(unsafe_code)]
    pub fn set_cost(&mut self, v: Var, cost: f64) -> Result<(), PlaceError> {
        let c = self.col(v)?;
        let model = self.model()?;
        // SAFETY: the live HiGHS instance owned by `model`; `c` is one of its columns.
        highs_status(unsafe { highs_sys::Highs_changeColCost(model.as_mut_ptr(), c, cost) }, "change a cost")
    }
    #[allow(unsafe_code)]
    pub fn set_bounds(&mut self, v: Var, lower: f64, upper: f64) -> Result<(), PlaceError> {
        let c = self.col(v)?;
        let model = self.model()?;
        // SAFETY: as in `set_cost`.
        highs_status(
            unsafe { highs_sys::Highs_changeColBounds(model.as_mut_ptr(), c, lower, upper) },
            "change a column's bounds",
        )
    }
    /// Changes the bounds of row `row` (an index returned by [`LpSession::add_row`] or the
    /// builder), keeping the basis.
    #[allow(unsafe_code)]
    pub fn set_row_bounds(&mut self, row: usize, lower: f64, upper: f64) -> Result<(), PlaceError> {
        let model = self.model()?;
        let r = highs_sys::HighsInt::try_from(row)
            .ok()
            .filter(|&r| (r as usize) < model.num_rows())
            .ok_or_else(|| PlaceError::Solver { detail: format!("no row {row}") })?;
        // SAFETY: as in `set_cost`; `r` is one of the model's rows.
        highs_status(
            unsafe { highs_sys::Highs_changeRowBounds(model.as_mut_ptr(), r, lower, upper) },
            "change a row's bounds",
        )
    }
    /// Sets every column's objective coefficient to zero, then applies `costs`.
    pub fn set_objective(&mut self, sense: Sense, costs: &[(Var, f64)]) -> Result<(), PlaceError> {
        self.model()?.set_sense(sense);
        for i in 0..self.columns {
            self.set_cost(Var(i), 0.0)?;
        }
        for &(v, cost) in costs {
            self.set_cost(v, cost)?;
        }
        Ok(())
    }
    pub fn num_cols(&self) -> usize {
        self.columns
    }
    /// Restarts HiGHS's clock, so that [`SolverOptions::time_limit`] bounds the solves from
    /// now on rather than all solves since the model was created.
    #[allow(unsafe_code)]
    pub fn reset_clock(&mut self) -> Result<(), PlaceError> {
        let model = self.model()?;
        // SAFETY: as in `set_cost`.
        highs_status(unsafe { highs_sys::Highs_zeroAllClocks(model.as_mut_ptr()) }, "reset its clock")
    }
    /// Adds continuous columns `[0, upper]` with objective 0 and the given coefficients in
    /// existing rows (by row index), in one call, keeping the model's basis, so the next
    /// solve starts warm (column generation); returns them in order. The `highs` crate offers
    /// this only for rows it handed out itself, hence the C call.
    #[allow(unsafe_code)]
    pub fn add_vars(&mut self, upper: f64, columns: &[Vec<(usize, f64)>]) -> Result<Vec<Var>, PlaceError> {
        if columns.is_empty() {
            return Ok(Vec::new());
        }
        let n = columns.len();
        let too_big = |what: &str, count: usize| PlaceError::Solver {
            detail: format!("cannot add {n} columns: {count} {what} are beyond HiGHS's index range"),
        };
        let mut starts = Vec::with_capacity(n);
        let mut index = Vec::new();
        let mut value = Vec::new();
        for rows in columns {
            starts.push(highs_sys::HighsInt::try_from(index.len()).map_err(|_| too_big("coefficients", index.len()))?);
            let (i, v) = sparse(rows.iter().copied())?;
            index.extend(i);
            value.extend(v);
        }
        let (costs, lower, uppers) = (vec![0.0; n], vec![0.0; n], vec![upper; n]);
        let count = highs_sys::HighsInt::try_from(n).map_err(|_| too_big("columns", n))?;
        let nz = highs_sys::HighsInt::try_from(index.len()).map_err(|_| too_big("coefficients", index.len()))?;
        let model = self.model()?;
        // SAFETY: the pointer is the live HiGHS instance owned by `model`; the cost and bound
        // arrays hold `n` entries, `starts` `n` ascending offsets into `index`/`value`, which
        // hold `nz` entries; all outlive the call, which copies them.
        let status = unsafe {
            highs_sys::Highs_addCols(
                model.as_mut_ptr(),
                count,
                costs.as_ptr(),
                lower.as_ptr(),
                uppers.as_ptr(),
                nz,
                starts.as_ptr(),
                index.as_ptr(),
                value.as_ptr(),
            )
        };
        highs_status(status, "add columns")?;
        let first = self.num_model_cols()? - n;
        self.columns += n;
        Ok((first..first + n).map(Var).collect())
    }
    /// Adds the row `lower ≤ Σ coef·var ≤ upper` to the live model; returns its index.
    #[allow(unsafe_code)]
    pub fn add_row(&mut self, lower: f64, upper: f64, terms: &[(Var, f64)]) -> Result<usize, PlaceError> {
        let (index, value) = sparse(terms.iter().map(|&(v, c)| (v.0, c)))?;
        let model = self.model()?;
        // SAFETY: the pointer is the live HiGHS instance owned by `model`; the index and value
        // arrays hold `index.len()` entries and outlive the call, which copies them.
        let status = unsafe {
            highs_sys::Highs_addRow(
                model.as_mut_ptr(),
                lower,
                upper,
                index.len() as highs_sys::HighsInt,
                index.as_ptr(),
                value.as_ptr(),
            )
        };
        highs_status(status, "add a row")?;
        Ok(self.model()?.num_rows() - 1)
    }
    /// Deletes those of `candidates` that are not basic in the model's current basis, so the
    /// basis stays valid and the next solve starts warm (column generation drops columns
    /// that have stopped paying). Returns each old column's new index (`None`: deleted);
    /// every [`Var`] held by the caller must be mapped through it. Candidates that are basic,
    /// and every column when the model has no basis yet, are kept.
    #[allow(unsafe_code)]
    pub fn delete_nonbasic(&mut self, candidates: &[Var]) -> Result<Vec<Option<usize>>, PlaceError> {
        let columns = self.columns;
        let rows = self.model()?.num_rows();
        let mut col_status: Vec<highs_sys::HighsInt> = vec![0; columns];
        let mut row_status: Vec<highs_sys::HighsInt> = vec![0; rows];
        let model = self.model()?;
        // SAFETY: the pointer is the live HiGHS instance owned by `model`; the status arrays
        // hold one entry per column and per row of the model, as the call requires.
        let status =
            unsafe { highs_sys::Highs_getBasis(model.as_mut_ptr(), col_status.as_mut_ptr(), row_status.as_mut_ptr()) };
        let unchanged = || (0..columns).map(Some).collect();
        // HiGHS answers an error when the model has no valid basis (never solved, or changed
        // in a way that lost it): nothing is deleted then.
        if status != highs_sys::kHighsStatusOk {
            return Ok(unchanged());
        }
        let mut mask: Vec<highs_sys::HighsInt> = vec![0; columns];
        let mut any = false;
        for v in candidates {
            if v.0 < columns && col_status[v.0] != highs_sys::kHighsBasisStatusBasic {
                mask[v.0] = 1;
                any = true;
            }
        }
        if !any {
            return Ok(unchanged());
        }
        // SAFETY: as above; `mask` holds one entry per column and HiGHS overwrites each with
        // the column's new index, or −1 for a deleted one.
        highs_status(
            unsafe { highs_sys::Highs_deleteColsByMask(model.as_mut_ptr(), mask.as_mut_ptr()) },
            "delete columns",
        )?;
        let map: Vec<Option<usize>> = mask.iter().map(|&m| usize::try_from(m).ok()).collect();
        self.columns = map.iter().flatten().count();
        Ok(map)
    }
    fn num_model_cols(&mut self) -> Result<usize, PlaceError> {
        Ok(self.model()?.num_cols())
    }
    /// Solves the model as it stands.
    pub fn solve(&mut self, options: &SolverOptions) -> Result<Solved, PlaceError> {
        let model =
            self.model.take().ok_or_else(|| PlaceError::Solver { detail: "the HiGHS model was lost".into() })?;
        let (solved, model) = run(model, self.integer, options);
        self.model = model;
        Ok(solved)
    }
}

/// Index and value arrays for the C API, zero coefficients dropped.
fn sparse(entries: impl Iterator<Item = (usize, f64)>) -> Result<(Vec<highs_sys::HighsInt>, Vec<f64>), PlaceError> {
    let mut index = Vec::new();
    let mut value = Vec::new();
    for (i, c) in entries.filter(|(_, c)| *c != 0.0) {
        let i = highs_sys::HighsInt::try_from(i)
            .map_err(|_| PlaceError::Solver { detail: format!("index {i} is beyond HiGHS's range") })?;
        index.push(i);
        value.push(c);
    }
    Ok((index, value))
}

/// A HiGHS status code as a result (warnings pass).
fn highs_status(status: highs_sys::HighsInt, what: &str) -> Result<(), PlaceError> {
    if status == highs_sys::kHighsStatusError {
        Err(PlaceError::Solver { detail: format!("HiGHS could not {what}") })
    } else {
        Ok(())
    }
}

/// A good_lp variable with the HiGHS column it becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GVar {
    pub var: good_lp::Variable,
    pub index: usize,
}

impl GVar {
    /// The variable's value in `values` (a solve's column values).
    pub fn value(&self, values: &[f64]) -> f64 {
        values.get(self.index).copied().unwrap_or(0.0)
    }
}

/// A model written with good_lp: variables, objective, constraints.
pub struct GoodLpModel {
    vars: ProblemVariables,
    pub sense: Sense,
    pub objective: Expression,
    pub constraints: Vec<Constraint>,
    integer: bool,
}

impl GoodLpModel {
    pub fn new(sense: Sense) -> Self {
        GoodLpModel {
            vars: ProblemVariables::new(),
            sense,
            objective: Expression::from(0.0),
            constraints: Vec::new(),
            integer: false,
        }
    }
    /// Adds a variable; good_lp's HiGHS backend makes it column `index`.
    pub fn add(&mut self, def: good_lp::VariableDefinition) -> GVar {
        self.integer |= def.is_integer();
        let index = self.vars.len();
        GVar { var: self.vars.add(def), index }
    }
    pub fn num_vars(&self) -> usize {
        self.vars.len()
    }
    /// Builds the model through good_lp's HiGHS backend and solves the HiGHS model here.
    pub fn solve(self, options: &SolverOptions) -> Result<Solved, PlaceError> {
        let (model, integer) = self.into_highs()?;
        Ok(run(model, integer, options).0)
    }

    /// [`GoodLpModel::solve`] with `start` (one value per column) handed to HiGHS as a
    /// starting solution (`Highs_setSolution`); HiGHS checks it and keeps it as its first
    /// incumbent when it is feasible. A start of the wrong length is not given.
    #[allow(unsafe_code)]
    pub fn solve_with_start(self, options: &SolverOptions, start: Option<&[f64]>) -> Result<Solved, PlaceError> {
        let (mut model, integer) = self.into_highs()?;
        if let Some(values) = start.filter(|v| v.len() == model.num_cols()) {
            // SAFETY: the pointer is the live HiGHS instance owned by `model`; `values` holds
            // one value per column and outlives the call, which copies it; HiGHS accepts null
            // for the row values and duals it is not given.
            unsafe {
                highs_sys::Highs_setSolution(
                    model.as_mut_ptr(),
                    values.as_ptr(),
                    std::ptr::null(),
                    std::ptr::null(),
                    std::ptr::null(),
                );
            }
        }
        Ok(run(model, integer, options).0)
    }

    /// The HiGHS model good_lp builds, and whether it has integer columns.
    fn into_highs(self) -> Result<(highs::Model, bool), PlaceError> {
        let unsolved = match self.sense {
            Sense::Maximise => self.vars.maximise(self.objective),
            Sense::Minimise => self.vars.minimise(self.objective),
        };
        let mut problem = unsolved.using(good_lp::solvers::highs::highs);
        for c in self.constraints {
            problem.add_constraint(c);
        }
        let model = problem
            .try_into_inner()
            .map_err(|e| PlaceError::Solver { detail: format!("HiGHS rejected the model: {e}") })?;
        Ok((model, self.integer))
    }

    /// Writes the model, exactly as [`GoodLpModel::solve`] would hand it to HiGHS, to the
    /// file `path` in the format its extension names (`.mps`: free MPS; `.lp`: CPLEX LP), so
    /// that another solver can be run on the same formulation. This is the one function of
    /// the crate that touches the file system; the caller owns the path.
    #[allow(unsafe_code)]
    pub fn write_model_file(self, path: &std::path::Path) -> Result<ModelShape, PlaceError> {
        let (mut model, integer) = self.into_highs()?;
        let shape = ModelShape { columns: model.num_cols(), rows: model.num_rows(), integer };
        let file = path.to_str().and_then(|p| std::ffi::CString::new(p).ok()).ok_or_else(|| PlaceError::Solver {
            detail: format!("model file {}: expected a UTF-8 path without NUL bytes", path.display()),
        })?;
        // HiGHS logs the write to standard output unless told not to.
        let _ = model.try_set_option("output_flag", false);
        // SAFETY: the pointer is the live HiGHS instance owned by `model`; `file` is a
        // NUL-terminated string that outlives the call, which only reads it.
        let status = unsafe { highs_sys::Highs_writeModel(model.as_mut_ptr(), file.as_ptr()) };
        if status == highs_sys::kHighsStatusError {
            return Err(PlaceError::Solver {
                detail: format!(
                    "HiGHS could not write the model to {} (expected a writable .mps or .lp path)",
                    path.display()
                ),
            });
        }
        Ok(shape)
    }
}

/// Size of a model written by [`GoodLpModel::write_model_file`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelShape {
    pub columns: usize,
    pub rows: usize,
    /// True when some column is integer.
    pub integer: bool,
}

fn apply_options(model: &mut highs::Model, integer: bool, options: &SolverOptions) -> (String, Vec<String>) {
    let mut failed = Vec::new();
    let mut check = |name: &str, ok: bool| {
        if !ok {
            failed.push(name.to_string());
        }
    };
    if options.verbose {
        check("output_flag", model.try_set_option("output_flag", true).is_ok());
        check("log_to_console", model.try_set_option("log_to_console", true).is_ok());
    }
    if let Some(limit) = options.time_limit {
        check("time_limit", model.try_set_option("time_limit", limit.as_secs_f64()).is_ok());
    }
    if let Some(threads) = options.threads {
        check("threads", model.try_set_option("threads", threads.clamp(1, i32::MAX as u32) as i32).is_ok());
    }
    if !options.presolve {
        check("presolve", model.try_set_option("presolve", "off").is_ok());
    }
    let method = if integer {
        check("mip_rel_gap", model.try_set_option("mip_rel_gap", options.mip_gap()).is_ok());
        "branch-and-cut".to_string()
    } else {
        let ipm = match options.lp_method {
            LpMethod::Ipm => true,
            LpMethod::Simplex => false,
            LpMethod::PrimalSimplex => {
                // HiGHS's simplex_strategy 4 = primal; simplex_scale_strategy 4 = scaling by
                // the largest absolute value of each row and column ("max value"): on the
                // FUSION column generation's warm re-solves it took ~40 % fewer iterations
                // than the default equilibration (docs/benchmarks.md).
                check("simplex_strategy", model.try_set_option("simplex_strategy", 4).is_ok());
                check("simplex_scale_strategy", model.try_set_option("simplex_scale_strategy", 4).is_ok());
                false
            }
            LpMethod::Auto => model.num_cols() > IPM_COLUMN_THRESHOLD,
        };
        if options.lp_method != LpMethod::PrimalSimplex {
            // Back to HiGHS's defaults (1 = dual; 1 = choose the scaling) after a primal
            // re-solve of the same session.
            check("simplex_strategy", model.try_set_option("simplex_strategy", 1).is_ok());
            check("simplex_scale_strategy", model.try_set_option("simplex_scale_strategy", 1).is_ok());
        }
        let method = if ipm { "ipm" } else { "simplex" };
        check("solver", model.try_set_option("solver", method).is_ok());
        method.to_string()
    };
    (method, failed)
}

/// Solves `model`, returning the statistics, the solution, and the model back for re-solves.
fn run(mut model: highs::Model, integer: bool, options: &SolverOptions) -> (Solved, Option<highs::Model>) {
    let columns = model.num_cols();
    let rows = model.num_rows();
    let (method, failed) = apply_options(&mut model, integer, options);
    let started = Instant::now();
    let mut stats = SolveStats {
        status: SolveStatus::Error { detail: String::new() },
        objective: None,
        bound: None,
        gap: None,
        seconds: 0.0,
        columns,
        rows,
        simplex_iterations: 0,
        ipm_iterations: 0,
        nodes: None,
        mip: integer,
        method,
    };
    if !failed.is_empty() {
        stats.status = SolveStatus::Error { detail: format!("HiGHS refused options {}", failed.join(", ")) };
        return (Solved { stats, values: Vec::new(), row_duals: Vec::new() }, Some(model));
    }
    let solved = match model.try_solve() {
        Ok(s) => s,
        Err(e) => {
            stats.seconds = started.elapsed().as_secs_f64();
            stats.status = SolveStatus::Error { detail: format!("HiGHS failed to run: {e:?}") };
            return (Solved { stats, values: Vec::new(), row_duals: Vec::new() }, None);
        }
    };
    stats.seconds = started.elapsed().as_secs_f64();
    stats.simplex_iterations = solved.int_info_value(c"simplex_iteration_count").unwrap_or(0).max(0) as u64;
    stats.ipm_iterations = solved.int_info_value(c"ipm_iteration_count").unwrap_or(0).max(0) as u64;
    let has_primal =
        solved.int_info_value(c"primal_solution_status").ok() == Some(HighsSolutionStatus::Feasible as i64);
    let status = solved.status();
    stats.status = match status {
        HighsModelStatus::Optimal => SolveStatus::Optimal,
        HighsModelStatus::ModelEmpty => SolveStatus::Optimal,
        HighsModelStatus::Infeasible | HighsModelStatus::UnboundedOrInfeasible => SolveStatus::Infeasible,
        HighsModelStatus::Unbounded => SolveStatus::Unbounded,
        HighsModelStatus::ReachedTimeLimit
        | HighsModelStatus::ReachedIterationLimit
        | HighsModelStatus::ReachedSolutionLimit
        | HighsModelStatus::ReachedInterrupt
        | HighsModelStatus::ReachedMemoryLimit
        | HighsModelStatus::ObjectiveBound
        | HighsModelStatus::ObjectiveTarget => {
            let limit = format!("{status:?}");
            if has_primal {
                SolveStatus::Feasible { limit }
            } else {
                SolveStatus::Error { detail: format!("{limit} before any feasible solution was found") }
            }
        }
        other => SolveStatus::Error { detail: format!("HiGHS model status {other:?}") },
    };
    let mut values = Vec::new();
    let mut row_duals = Vec::new();
    if stats.status.has_solution() {
        if status == HighsModelStatus::ModelEmpty {
            values = vec![0.0; columns];
            row_duals = vec![0.0; rows];
            stats.objective = Some(0.0);
        } else {
            let sol = solved.get_solution();
            values = sol.columns().to_vec();
            if !integer {
                row_duals = sol.dual_rows().to_vec();
            }
            stats.objective = Some(solved.objective_value());
        }
        if integer {
            stats.bound = solved.double_info_value(c"mip_dual_bound").ok().filter(|b| b.is_finite());
            stats.gap = solved.double_info_value(c"mip_gap").ok().filter(|g| g.is_finite());
        } else if stats.status == SolveStatus::Optimal {
            stats.bound = stats.objective;
            stats.gap = Some(0.0);
        }
    }
    (Solved { stats, values, row_duals }, Some(highs::Model::from(solved)))
}

/// Reads a model file with a fresh HiGHS instance and solves it to a zero gap: the model
/// status and objective, and the file's column and row counts (tests of the model export).
#[cfg(test)]
#[allow(unsafe_code)]
pub(crate) fn solve_model_file(path: &std::path::Path) -> (highs_sys::HighsInt, f64, usize, usize) {
    let file = std::ffi::CString::new(path.to_str().unwrap_or_default()).unwrap_or_default();
    // SAFETY: a HiGHS instance created here, used only in this function and destroyed at its
    // end; the option names and `file` are NUL-terminated strings that outlive each call.
    unsafe {
        let h = highs_sys::Highs_create();
        highs_sys::Highs_setBoolOptionValue(h, c"output_flag".as_ptr(), 0);
        highs_sys::Highs_setDoubleOptionValue(h, c"mip_rel_gap".as_ptr(), 0.0);
        let read = highs_sys::Highs_readModel(h, file.as_ptr());
        assert_ne!(read, highs_sys::kHighsStatusError, "HiGHS could not read {}", path.display());
        let columns = highs_sys::Highs_getNumCol(h) as usize;
        let rows = highs_sys::Highs_getNumRow(h) as usize;
        highs_sys::Highs_run(h);
        let status = highs_sys::Highs_getModelStatus(h);
        let objective = highs_sys::Highs_getObjectiveValue(h);
        highs_sys::Highs_destroy(h);
        (status, objective, columns, rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use good_lp::{variable, Expression};

    #[test]
    fn a_written_model_reads_back_to_the_same_optimum() {
        // min 2a + 3b + 0.5c + 1  s.t. a + b ≥ 1, b + c ≥ 1, a, b binary, c ∈ [0, 4]:
        // a = c = 1 (2.5) beats b = 1 (3). good_lp's HiGHS backend leaves the constant out
        // of the model, so the file and the direct solve both say 2.5 (the chain ILP has no
        // constant term).
        let build = || {
            let mut m = GoodLpModel::new(Sense::Minimise);
            let a = m.add(variable().binary());
            let b = m.add(variable().binary());
            let c = m.add(variable().min(0.0).max(4.0));
            m.objective = 2.0 * a.var + 3.0 * b.var + 0.5 * c.var + 1.0;
            m.constraints.push((Expression::from(a.var) + b.var).geq(1.0));
            m.constraints.push((Expression::from(b.var) + c.var).geq(1.0));
            m
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small.mps");
        let shape = build().write_model_file(&path).unwrap();
        assert_eq!(shape, ModelShape { columns: 3, rows: 2, integer: true });
        let direct = build().solve(&SolverOptions::default()).unwrap();
        let (status, objective, columns, rows) = solve_model_file(&path);
        assert_eq!(status, highs_sys::kHighsModelStatusOptimal);
        assert_eq!((columns, rows), (3, 2));
        assert!((objective - 2.5).abs() < 1e-9, "{objective}");
        assert!((direct.stats.objective.unwrap() - objective).abs() < 1e-9, "{:?}", direct.stats);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("MARKER"), "integer columns are marked in the MPS file:\n{text}");
        let bad = build().write_model_file(&dir.path().join("missing-dir").join("x.mps"));
        assert!(matches!(bad, Err(PlaceError::Solver { detail }) if detail.contains("missing-dir")));
    }

    #[test]
    fn direct_lp_solves_and_resolves_warm() {
        // max x + y  s.t. x + 2y ≤ 4, 3x + y ≤ 6, x, y ≥ 0  → x = 1.6, y = 1.2, obj 2.8
        let mut b = LpBuilder::new();
        let x = b.add_var(0.0, f64::INFINITY, 1.0);
        let y = b.add_var(0.0, f64::INFINITY, 1.0);
        b.add_row(f64::NEG_INFINITY, 4.0, [(x, 1.0), (y, 2.0)]);
        b.add_row(f64::NEG_INFINITY, 6.0, [(x, 3.0), (y, 1.0)]);
        let mut s = b.into_session(Sense::Maximise).unwrap();
        let r = s.solve(&SolverOptions::default()).unwrap();
        assert_eq!(r.stats.status, SolveStatus::Optimal);
        assert!((r.stats.objective.unwrap() - 2.8).abs() < 1e-7);
        assert!((r.values[0] - 1.6).abs() < 1e-7 && (r.values[1] - 1.2).abs() < 1e-7);
        assert_eq!((r.stats.columns, r.stats.rows), (2, 2));
        assert_eq!(r.stats.gap, Some(0.0));
        // Re-solve with y capped and only x in the objective.
        s.set_bounds(y, 0.0, 0.5).unwrap();
        s.set_objective(Sense::Maximise, &[(x, 1.0)]).unwrap();
        let r = s.solve(&SolverOptions { lp_method: LpMethod::Ipm, ..Default::default() }).unwrap();
        assert!((r.stats.objective.unwrap() - 2.0).abs() < 1e-6, "{:?}", r.stats);
        assert_eq!(r.stats.method, "ipm");
    }

    #[test]
    fn reduced_costs_follow_the_documented_sign() {
        // max x + y + 0.1 w  s.t. x + 2y + w ≤ 4, 3x + y + w ≤ 6  → w stays at 0.
        let mut b = LpBuilder::new();
        let x = b.add_var(0.0, f64::INFINITY, 1.0);
        let y = b.add_var(0.0, f64::INFINITY, 1.0);
        let w = b.add_var(0.0, f64::INFINITY, 0.1);
        let r0 = b.add_row(f64::NEG_INFINITY, 4.0, [(x, 1.0), (y, 2.0), (w, 1.0)]);
        let r1 = b.add_row(f64::NEG_INFINITY, 6.0, [(x, 3.0), (y, 1.0), (w, 1.0)]);
        let r = b.into_session(Sense::Maximise).unwrap().solve(&SolverOptions::default()).unwrap();
        let d = &r.row_duals;
        assert!(r.values[w.0].abs() < 1e-9);
        let rc_w = 0.1 - (d[r0] + d[r1]);
        assert!(rc_w < -1e-6, "a column not worth using prices ≤ 0: {rc_w}, duals {d:?}");
        let rc_x = 1.0 - (d[r0] + 3.0 * d[r1]);
        assert!(rc_x.abs() < 1e-9, "a basic column prices 0: {rc_x}");
    }

    #[test]
    fn deleting_nonbasic_columns_keeps_the_basis_and_maps_the_rest() {
        // max x + y + 0.1 w + 0.05 v  s.t. x + 2y + w + v ≤ 4, 3x + y + w + v ≤ 6:
        // x = 1.6, y = 1.2 basic; w and v nonbasic at 0.
        let mut b = LpBuilder::new();
        let x = b.add_var(0.0, f64::INFINITY, 1.0);
        let w = b.add_var(0.0, f64::INFINITY, 0.1);
        let y = b.add_var(0.0, f64::INFINITY, 1.0);
        let v = b.add_var(0.0, f64::INFINITY, 0.05);
        b.add_row(f64::NEG_INFINITY, 4.0, [(x, 1.0), (y, 2.0), (w, 1.0), (v, 1.0)]);
        b.add_row(f64::NEG_INFINITY, 6.0, [(x, 3.0), (y, 1.0), (w, 1.0), (v, 1.0)]);
        let mut s = b.into_session(Sense::Maximise).unwrap();
        let opts = SolverOptions::default();
        // Before any solve there is no basis: nothing is deleted.
        assert_eq!(s.delete_nonbasic(&[w]).unwrap(), vec![Some(0), Some(1), Some(2), Some(3)]);
        let r = s.solve(&opts).unwrap();
        assert!((r.stats.objective.unwrap() - 2.8).abs() < 1e-7);
        // x is basic and stays, whatever the caller asks; w goes.
        let map = s.delete_nonbasic(&[x, w]).unwrap();
        assert_eq!(map, vec![Some(0), None, Some(1), Some(2)]);
        assert_eq!(s.num_cols(), 3);
        let primal = SolverOptions { lp_method: LpMethod::PrimalSimplex, ..Default::default() };
        let r = s.solve(&primal).unwrap();
        assert_eq!(r.stats.simplex_iterations, 0, "the basis survived the deletion");
        assert!((r.stats.objective.unwrap() - 2.8).abs() < 1e-7);
        assert_eq!(r.values.len(), 3);
        // Columns added in one call come after the survivors; the basis still holds.
        let added = s.add_vars(1.0, &[vec![(0, 1.0)], vec![(0, 1.0), (1, 1.0)]]).unwrap();
        assert_eq!(added, vec![Var(3), Var(4)]);
        s.set_cost(added[0], 10.0).unwrap();
        let r = s.solve(&primal).unwrap();
        assert!((r.values[3] - 1.0).abs() < 1e-7, "the new column pays and enters: {:?}", r.values);
    }

    #[test]
    fn infeasible_and_mip_statuses() {
        let mut b = LpBuilder::new();
        let x = b.add_var(0.0, 1.0, 1.0);
        b.add_row(2.0, f64::INFINITY, [(x, 1.0)]);
        let r = b.into_session(Sense::Maximise).unwrap().solve(&SolverOptions::default()).unwrap();
        assert_eq!(r.stats.status, SolveStatus::Infeasible);
        assert!(r.values.is_empty());

        // good_lp path with integers: max 3a + 2b, a + b ≤ 1.5, a, b ∈ {0,1}  → a = 1
        let mut m = GoodLpModel::new(Sense::Maximise);
        let a = m.add(variable().binary());
        let bb = m.add(variable().binary());
        m.objective = 3.0 * a.var + 2.0 * bb.var;
        m.constraints.push((Expression::from(a.var) + bb.var).leq(1.5));
        let r = m.solve(&SolverOptions::default()).unwrap();
        assert_eq!(r.stats.status, SolveStatus::Optimal);
        assert!(r.stats.mip);
        assert!((r.stats.objective.unwrap() - 3.0).abs() < 1e-9);
        assert!((r.stats.bound.unwrap() - 3.0).abs() < 1e-6, "{:?}", r.stats);
        assert!((a.value(&r.values) - 1.0).abs() < 1e-9);
    }
}
