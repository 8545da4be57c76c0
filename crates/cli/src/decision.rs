//! How a placement decision is printed (`zonal apply --dry-run`, `zonal plan --context`,
//! `zonal describe service`): what decided and why, the objective before and after, and the
//! difference against what runs — instances per zone and host, moves, channel paths.

use std::collections::BTreeSet;

use zonal_place::decide::Decision;
use zonal_place::PlanStatus;

use crate::table::Table;

/// A plan's status for people (also `zonal plan`'s).
pub fn status(s: &PlanStatus) -> String {
    match s {
        PlanStatus::Optimal => "optimal".into(),
        PlanStatus::Feasible { limit } if limit == "heuristic" => "feasible (heuristic, not proven optimal)".into(),
        PlanStatus::Feasible { limit } => format!("feasible ({limit} reached)"),
    }
}

fn num(v: Option<f64>) -> String {
    // `+ 0.0` turns a negative zero (an empty sum) into 0.
    v.map_or("-".into(), |x| format!("{:.4}", x + 0.0))
}

/// The decision as text for people.
pub fn render(d: &Decision) -> String {
    let mut out = String::new();
    let p = &d.plan;
    out.push_str(&format!(
        "service {}: {} — {} by {}\n",
        d.service,
        d.trigger.describe(),
        d.route.as_str(),
        p.algorithm
    ));
    out.push_str(&format!("why:      {}\n", d.reason));
    for s in &d.solvers {
        out.push_str(&format!("solver:   {} for {}: {}\n", s.solver, s.service, s.reason));
    }
    out.push_str(&format!(
        "plan:     {}, objective {:.4}, bound {}, gap {}; solved in {:.3} s ({} solve(s)); decided in {:.0} ms\n",
        status(&p.status),
        p.objective,
        num(p.bound),
        p.gap.map_or("-".into(), |g| format!("{:.2}%", g * 100.0)),
        p.stats.seconds,
        p.stats.solves,
        d.seconds * 1000.0
    ));
    out.push_str(&format!(
        "checker:  {}\n",
        if d.check.is_ok() {
            "ok (capacity, paths, latency, proximity, pins recomputed independently)".to_string()
        } else {
            d.check.summary()
        }
    ));
    let names: BTreeSet<&String> = d.after.terms.keys().chain(d.before.iter().flat_map(|b| b.terms.keys())).collect();
    if !names.is_empty() {
        let mut t = Table::new(["TERM", "BEFORE", "AFTER"]);
        for n in names {
            t.row([
                n.clone(),
                num(d.before.as_ref().and_then(|b| b.terms.get(n)).copied()),
                num(d.after.terms.get(n).copied()),
            ]);
        }
        for line in t.render().lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out.push_str(&format!(
        "value:    before {} after {} ({:?}); gain {}; move cost {:.4}\n",
        num(d.before.as_ref().map(|b| b.value)),
        num(Some(d.after.value)),
        d.after.unit,
        num(d.gain),
        d.move_cost
    ));
    out.push_str(&format!("outcome:  {}\n", d.summary));
    if d.diff.is_empty() {
        out.push_str("diff:     nothing to change\n");
    } else {
        out.push_str(&format!(
            "diff:     {} to start, {} to stop, {} move(s)\n",
            d.diff.start,
            d.diff.stop,
            d.diff.moved()
        ));
        let mut t = Table::new(["ZONE", "HOST", "COMPONENT", "BEFORE", "AFTER", "CHANGE"]);
        for c in &d.diff.changes {
            let delta = i64::from(c.after) - i64::from(c.before);
            t.row([
                c.zone.clone(),
                c.host.clone().unwrap_or_else(|| "(zone)".into()),
                c.component.clone(),
                c.before.to_string(),
                c.after.to_string(),
                if delta > 0 { format!("+{delta}") } else { delta.to_string() },
            ]);
        }
        for line in t.render().lines() {
            out.push_str(&format!("  {line}\n"));
        }
        if !d.diff.moves.is_empty() {
            let mut t = Table::new(["MOVE", "FROM", "TO", "INSTANCES"]);
            for m in &d.diff.moves {
                let at = |z: &str, h: &Option<String>| match h {
                    Some(h) => format!("{z}/{h}"),
                    None => z.to_string(),
                };
                t.row([
                    m.component.clone(),
                    at(&m.from_zone, &m.from_host),
                    at(&m.to_zone, &m.to_host),
                    m.count.to_string(),
                ]);
            }
            for line in t.render().lines() {
                out.push_str(&format!("  {line}\n"));
            }
        }
    }
    let mut t = Table::new(["CHANNEL", "PATH", "LATENCY", "BANDWIDTH", ""]);
    let added: BTreeSet<_> = d.diff.paths_added.iter().map(|p| (&p.from, &p.to, &p.zones)).collect();
    let row = |p: &zonal_model::ReservedPath, what: &str| {
        [
            format!("{} → {}", p.from, p.to),
            p.zones.join(" → "),
            format!("{:.3} ms", p.latency_ms),
            format!("{} × {} Mbit/s", p.copies, p.mbps),
            what.to_string(),
        ]
    };
    for p in &d.target.paths {
        t.row(row(p, if added.contains(&(&p.from, &p.to, &p.zones)) { "new" } else { "" }));
    }
    for p in &d.diff.paths_released {
        t.row(row(p, "released"));
    }
    if !t.is_empty() {
        out.push_str("paths:    channels that cross zones and the bandwidth they reserve\n");
        for line in t.render().lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    for (c, o) in &d.target.overrides {
        let req: Vec<String> = o.requires.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!(
            "profile:  {c} → {} ({}{})\n",
            o.profile.as_deref().unwrap_or("?"),
            req.join(", "),
            o.resources.as_ref().map_or(String::new(), |r| format!("; {r}"))
        ));
    }
    for n in &d.notes {
        out.push_str(&format!("note:     {n}\n"));
    }
    out
}
