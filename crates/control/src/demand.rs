//! Measured demand: where a service's users are, from what the domain sees (FUSION §2.5.3:
//! the domain decides on regional demand). Pure: counts in, estimate out.
//!
//! The domain resolves every client (`GET /1.0/resolve/{service}`); a client that names its
//! region, or whose coordinates are nearest to a region, counts for that region. The zones
//! report how many sessions each service has open. The estimate splits the open sessions over
//! the regions in proportion to the resolutions of the last window:
//! `sessions_r = round(open × resolutions_r / Σ resolutions)`, largest remainders first so the
//! parts add up. With fewer than [`MIN_RESOLUTIONS`] resolutions in the window there is no
//! estimate: a handful of clients says little about where the users are.
//!
//! The effective demand of a region is the larger of what is declared (demand documents, at
//! the time of day) and what is measured ([`combine`]): declared demand is a plan, measured
//! demand a fact, and capacity is only safe when it covers both.
//!
//! A **shift** ([`shifted`]) is a change of the regional demand vector worth re-deciding for:
//! its relative L1 distance to the demand the placement was made for exceeds the threshold,
//! and by at least one instance's slots.

use std::collections::BTreeMap;

/// Fewer resolutions than this in a window make no estimate.
pub const MIN_RESOLUTIONS: u64 = 10;

/// Sessions per region: the open sessions split by the regions' share of resolutions.
pub fn estimate(resolutions: &BTreeMap<String, u64>, open_sessions: u32) -> BTreeMap<String, u32> {
    let total: u64 = resolutions.values().sum();
    if total < MIN_RESOLUTIONS || open_sessions == 0 {
        return BTreeMap::new();
    }
    let mut parts: Vec<(String, u32, f64)> = resolutions
        .iter()
        .map(|(r, n)| {
            let exact = f64::from(open_sessions) * *n as f64 / total as f64;
            (r.clone(), exact.floor() as u32, exact - exact.floor())
        })
        .collect();
    let given: u32 = parts.iter().map(|p| p.1).sum();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| parts[b].2.total_cmp(&parts[a].2).then(parts[a].0.cmp(&parts[b].0)));
    for &i in order.iter().take(open_sessions.saturating_sub(given) as usize) {
        parts[i].1 += 1;
    }
    parts.into_iter().filter(|p| p.1 > 0).map(|(r, n, _)| (r, n)).collect()
}

/// Per region, the larger of declared and measured slots.
pub fn combine(declared: &BTreeMap<String, u32>, measured: &BTreeMap<String, u32>) -> BTreeMap<String, u32> {
    let mut out = declared.clone();
    for (r, m) in measured {
        let e = out.entry(r.clone()).or_insert(0);
        *e = (*e).max(*m);
    }
    out.retain(|_, n| *n > 0);
    out
}

/// Has demand moved from `basis` to `now` enough to re-decide? Relative L1 distance above
/// `threshold` and at least `min_slots` slots moved in all.
pub fn shifted(basis: &BTreeMap<String, u32>, now: &BTreeMap<String, u32>, threshold: f64, min_slots: u32) -> bool {
    let regions: std::collections::BTreeSet<&String> = basis.keys().chain(now.keys()).collect();
    let l1: u64 = regions
        .into_iter()
        .map(|r| u64::from(basis.get(r).copied().unwrap_or(0).abs_diff(now.get(r).copied().unwrap_or(0))))
        .sum();
    let total = |m: &BTreeMap<String, u32>| m.values().map(|v| u64::from(*v)).sum::<u64>();
    let scale = total(basis).max(total(now)).max(1);
    l1 >= u64::from(min_slots.max(1)) && (l1 as f64 / scale as f64) > threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn estimates_split_open_sessions_by_resolutions_and_add_up() {
        let r: BTreeMap<String, u64> = [("a".to_string(), 30), ("b".to_string(), 10)].into();
        assert_eq!(estimate(&r, 41), m(&[("a", 31), ("b", 10)]));
        let few: BTreeMap<String, u64> = [("a".to_string(), 3)].into();
        assert!(estimate(&few, 40).is_empty(), "too few resolutions to say");
        assert!(estimate(&r, 0).is_empty());
    }

    #[test]
    fn declared_and_measured_combine_by_maximum() {
        assert_eq!(combine(&m(&[("a", 10), ("b", 5)]), &m(&[("b", 8), ("c", 2)])), m(&[("a", 10), ("b", 8), ("c", 2)]));
    }

    #[test]
    fn a_shift_needs_both_a_relative_and_an_absolute_change() {
        let basis = m(&[("a", 40), ("b", 10)]);
        assert!(shifted(&basis, &m(&[("a", 10), ("b", 40)]), 0.25, 10), "the two regions swapped");
        assert!(!shifted(&basis, &m(&[("a", 38), ("b", 12)]), 0.25, 10), "noise");
        assert!(!shifted(&m(&[("a", 2)]), &m(&[("a", 4)]), 0.25, 10), "small in absolute terms");
    }
}
