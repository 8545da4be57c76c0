//! Multi-configuration pooling against separate pools (FUSION D3.2 §4.1, M/M/c): how many
//! session slots each service needs for the same waiting-time target when `n` services with
//! the same load share one pool of slots (one multi-configuration instance group) instead of
//! each having its own.
//!
//! Run: `cargo run -p zonal-control --example pooling`. Rates are per hour; the paper's
//! μ = 4/hour (15-minute sessions) throughout.

use zonal_control::slots::{erlang_c, erlang_c_mean_wait, pooling_gain, slots_for_wait};

const MU: f64 = 4.0;
const SECOND: f64 = 1.0 / 3600.0;

/// The highest offered load (erlangs) `servers` slots carry with a waiting probability at or
/// under `p`, by bisection (the waiting probability grows with the load).
fn max_load_for_wait_probability(servers: u32, p: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, f64::from(servers));
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if erlang_c(servers, mid) <= p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

fn main() {
    let ns = [1u32, 2, 4, 8];

    println!("Slots per service for a mean-wait target (Figure 35a is the λ = 1/min rows; μ = 4/h)");
    println!("pooled: ⌈slots of one pool for n × λ⌉ / n; reduction against n = 1 (separate pools)");
    println!(
        "{:>9} {:>6} | {:>9} {:>9} {:>9} {:>9} | {:>9}",
        "λ/service", "wait", "n=1", "n=2", "n=4", "n=8", "n=8 gain"
    );
    for (lambda_per_min, label) in [(0.25, "0.25/min"), (1.0, "1/min"), (4.0, "4/min")] {
        let lambda = lambda_per_min * 60.0;
        for wait_s in [10.0, 1.0, 0.1, 0.01] {
            let per_service: Vec<f64> =
                ns.iter().map(|&n| pooling_gain(n, lambda, MU, wait_s * SECOND)["pooled_per_service"]).collect();
            let separate = pooling_gain(1, lambda, MU, wait_s * SECOND)["separate_per_service"];
            println!(
                "{:>9} {:>5}s | {:>9.2} {:>9.2} {:>9.2} {:>9.2} | {:>8.0}%",
                label,
                wait_s,
                per_service[0],
                per_service[1],
                per_service[2],
                per_service[3],
                100.0 * (1.0 - per_service[3] / separate)
            );
        }
    }

    println!();
    println!("Utilisation at a 1 % waiting probability (Figure 33b: C = 20 slots per service)");
    println!("{:>3} {:>12} {:>14} {:>12}", "n", "pool slots", "max erlangs", "utilisation");
    for n in ns {
        let c = 20 * n;
        let a = max_load_for_wait_probability(c, 0.01);
        println!("{:>3} {:>12} {:>14.2} {:>11.1}%", n, c, a, 100.0 * a / f64::from(c));
    }

    println!();
    println!("Mean wait by utilisation (Figure 34a: C = 10 slots per service, μ = 4/h)");
    println!("{:>12} | {:>10} {:>10} {:>10} {:>10}", "utilisation", "n=1", "n=2", "n=4", "n=8");
    for rho in [0.5, 0.6, 0.75, 0.9] {
        let waits: Vec<String> = ns
            .iter()
            .map(|&n| {
                let c = 10 * n;
                let lambda = rho * f64::from(c) * MU;
                format!("{:.3} s", erlang_c_mean_wait(c, lambda, MU) / SECOND)
            })
            .collect();
        println!("{:>11.0}% | {:>10} {:>10} {:>10} {:>10}", 100.0 * rho, waits[0], waits[1], waits[2], waits[3]);
    }

    println!();
    let separate = slots_for_wait(60.0, MU, 0.1 * SECOND);
    let pooled = slots_for_wait(8.0 * 60.0, MU, 0.1 * SECOND);
    println!(
        "Paper's example (λ = 1/min, μ = 4/h, mean wait ≤ 0.1 s): separate {separate} slots per service, \
         8 pooled {pooled} in all = {:.1} per service ({:.0} % fewer); paper: 29 → 20 (−33 %)",
        f64::from(pooled) / 8.0,
        100.0 * (1.0 - f64::from(pooled) / 8.0 / f64::from(separate))
    );
}
