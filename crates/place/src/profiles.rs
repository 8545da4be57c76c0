//! Energy-aware hardware profiles (OPERA ECRAE, seed 003 §4.2): a component's workload tag
//! is resolved through the knowledge base to candidate hardware profiles, which an
//! [`EfficiencyModel`] ranks against the hosts actually available and their current load; the
//! winner's resources and architecture are substituted into the component.
//!
//! The deliverable leaves the efficiency model undefined ("a simple ranking model is
//! necessary"). Zonal's default, [`PerformancePerWatt`], scores a (profile, host) pair by the
//! workload's relative performance on the profile divided by the **marginal power** the host
//! would draw to run it:
//!
//! * the host's power follows its linear model `idle + (max − idle) × u`, with `u` the CPU
//!   utilisation (CPU dominates server power; memory barely moves it);
//! * marginal power = power after placing the profile − power before; a host that runs nothing
//!   is assumed suspended, so waking it adds its idle power too;
//! * infeasible pairs (architecture or accelerator missing, resources not free) are not
//!   ranked.
//!
//! So a busy, efficient host beats waking an idle one, and an architecture on which the
//! workload runs faster per watt wins. Other models plug in through the trait (chosen by name,
//! like the built-in one).

use zonal_model::{HardwareProfile, KnowledgeBase, PowerModel, Resources, Service, TagCandidate, TagMode};

/// A host as the ranking sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostState {
    pub zone: String,
    pub host: String,
    pub arch: Option<String>,
    pub accelerator: Option<String>,
    pub capacity: Resources,
    pub used: Resources,
    pub power: PowerModel,
}

impl HostState {
    fn cpu_utilisation(&self, extra_millicores: u64) -> f64 {
        let cap = self.capacity.get("cpu");
        if cap == 0 {
            return 0.0;
        }
        (self.used.get("cpu") + extra_millicores) as f64 / cap as f64
    }
    fn free(&self) -> Resources {
        let mut f = self.capacity.clone();
        f.sub_scaled(&self.used, 1);
        f
    }
}

/// Scores a candidate profile on a host; `None` means the pair is infeasible.
pub trait EfficiencyModel {
    fn name(&self) -> &str;
    fn score(&self, candidate: &TagCandidate, profile: &HardwareProfile, host: &HostState) -> Option<Score>;
}

/// A score and the quantities behind it, shown to the user.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub value: f64,
    pub marginal_watts: f64,
    pub performance: f64,
}

/// Zonal's default efficiency model: relative performance per marginal watt.
#[derive(Debug, Default, Clone, Copy)]
pub struct PerformancePerWatt;

impl EfficiencyModel for PerformancePerWatt {
    fn name(&self) -> &str {
        "performance-per-watt"
    }
    fn score(&self, candidate: &TagCandidate, profile: &HardwareProfile, host: &HostState) -> Option<Score> {
        if profile.arch.as_ref().is_some_and(|a| host.arch.as_ref() != Some(a)) {
            return None;
        }
        if profile.accelerator.as_ref().is_some_and(|a| host.accelerator.as_ref() != Some(a)) {
            return None;
        }
        if !host.free().fits(&profile.resources) {
            return None;
        }
        let before = if host.used.is_empty() { 0.0 } else { host.power.watts(host.cpu_utilisation(0)) };
        let after = host.power.watts(host.cpu_utilisation(profile.resources.get("cpu")));
        let marginal = (after - before).max(1e-3);
        Some(Score {
            value: candidate.performance / marginal,
            marginal_watts: marginal,
            performance: candidate.performance,
        })
    }
}

/// One ranked option for a tagged component.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub profile: String,
    pub zone: String,
    pub host: String,
    pub score: Score,
}

/// Why a component got the resources it got.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileChoice {
    pub component: String,
    pub tag: String,
    pub chosen: Option<Ranked>,
    /// Every feasible option, best first.
    pub ranking: Vec<Ranked>,
    pub reason: String,
}

/// Ranks every (candidate profile, host) pair for `tag`, best first; ties go to the host name
/// order so the ranking is deterministic.
pub fn rank(kb: &KnowledgeBase, tag: &str, hosts: &[HostState], model: &dyn EfficiencyModel) -> Vec<Ranked> {
    let Some(t) = kb.tag(tag) else { return Vec::new() };
    let mut out = Vec::new();
    for c in &t.candidates {
        let Some(profile) = kb.profile(&c.profile) else { continue };
        for h in hosts {
            if let Some(score) = model.score(c, profile, h) {
                out.push(Ranked { profile: profile.name.clone(), zone: h.zone.clone(), host: h.host.clone(), score });
            }
        }
    }
    out.sort_by(|a, b| {
        b.score
            .value
            .total_cmp(&a.score.value)
            .then_with(|| (&a.zone, &a.host, &a.profile).cmp(&(&b.zone, &b.host, &b.profile)))
    });
    out
}

/// Substitutes every tagged component's tag by a concrete profile: its resources (when the
/// component declares none) and its architecture/accelerator as required features. Exact tags
/// use their one profile without ranking; hint tags take the best-ranked feasible option.
/// Hosts' `used` is updated as choices are made, so components compete for the same hosts.
pub fn substitute(
    service: &Service,
    kb: &KnowledgeBase,
    hosts: &mut [HostState],
    model: &dyn EfficiencyModel,
) -> (Service, Vec<ProfileChoice>) {
    let mut out = service.clone();
    let mut choices = Vec::new();
    for comp in out.components.iter_mut() {
        let Some(tag) = comp.tag.clone() else { continue };
        let Some(t) = kb.tag(&tag) else {
            choices.push(ProfileChoice {
                component: comp.name.clone(),
                tag,
                chosen: None,
                ranking: vec![],
                reason: "tag not in the knowledge base".into(),
            });
            continue;
        };
        let ranking = rank(kb, &tag, hosts, model);
        let (chosen, reason) = match t.mode {
            TagMode::Exact => {
                let name = t.candidates.first().map(|c| c.profile.clone()).unwrap_or_default();
                let best_host = ranking.iter().find(|r| r.profile == name).cloned();
                (best_host, format!("exact tag: profile {name} used as given"))
            }
            TagMode::Hint => match ranking.first() {
                Some(r) => (
                    Some(r.clone()),
                    format!(
                        "best of {} feasible options by {}: {:.3} (performance {} / {:.1} W marginal)",
                        ranking.len(),
                        model.name(),
                        r.score.value,
                        r.score.performance,
                        r.score.marginal_watts
                    ),
                ),
                None => (None, "no host can run any candidate profile".into()),
            },
        };
        if let Some(r) = &chosen {
            if let Some(profile) = kb.profile(&r.profile) {
                if comp.resources.is_empty() {
                    comp.resources = profile.resources.clone();
                }
                if let Some(a) = &profile.arch {
                    comp.placement.requires.insert("arch".into(), a.clone());
                }
                if let Some(a) = &profile.accelerator {
                    comp.placement.requires.insert("accelerator".into(), a.clone());
                }
                if let Some(h) = hosts.iter_mut().find(|h| h.zone == r.zone && h.host == r.host) {
                    h.used.add_scaled(&profile.resources, 1);
                }
            }
        }
        choices.push(ProfileChoice { component: comp.name.clone(), tag, chosen, ranking, reason });
    }
    (out, choices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zonal_model::{Amount, Component, Power, WorkloadTag};

    fn res(cpu: u64, gib: u64) -> Resources {
        Resources::new().with("cpu", Amount::cpu(cpu * 1000)).with("memory", Amount::bytes(gib << 30))
    }

    fn host(name: &str, arch: &str, idle: f64, max: f64, used_cpu: u64) -> HostState {
        HostState {
            zone: "z".into(),
            host: name.into(),
            arch: Some(arch.into()),
            accelerator: None,
            capacity: res(16, 64),
            used: if used_cpu > 0 { res(used_cpu, 1) } else { Resources::new() },
            power: PowerModel { idle: Power::from_watts(idle), max: Power::from_watts(max) },
        }
    }

    fn kb() -> KnowledgeBase {
        KnowledgeBase {
            name: "kb".into(),
            profiles: vec![
                HardwareProfile {
                    name: "x86".into(),
                    arch: Some("x86_64".into()),
                    resources: res(4, 8),
                    accelerator: None,
                },
                HardwareProfile {
                    name: "arm".into(),
                    arch: Some("arm64".into()),
                    resources: res(4, 8),
                    accelerator: None,
                },
            ],
            tags: vec![WorkloadTag {
                name: "web".into(),
                mode: TagMode::Hint,
                candidates: vec![
                    TagCandidate { profile: "x86".into(), performance: 1.0 },
                    TagCandidate { profile: "arm".into(), performance: 0.9 },
                ],
            }],
        }
    }

    #[test]
    fn busy_efficient_hosts_win_over_waking_idle_ones() {
        let hosts = vec![host("idle-x86", "x86_64", 100.0, 300.0, 0), host("busy-arm", "arm64", 40.0, 120.0, 4)];
        let r = rank(&kb(), "web", &hosts, &PerformancePerWatt);
        assert_eq!(r[0].host, "busy-arm", "{r:?}");
        assert_eq!(r.len(), 2, "each profile only fits its own architecture");
    }

    #[test]
    fn substitution_fills_resources_and_explains() {
        let mut hosts = vec![host("a", "x86_64", 100.0, 300.0, 2)];
        let svc = Service {
            name: "s".into(),
            components: vec![Component { name: "front".into(), tag: Some("web".into()), ..Default::default() }],
            ..Default::default()
        };
        let (out, why) = substitute(&svc, &kb(), &mut hosts, &PerformancePerWatt);
        assert_eq!(out.components[0].resources.get("cpu"), 4000);
        assert_eq!(out.components[0].placement.requires.get("arch").map(String::as_str), Some("x86_64"));
        assert!(why[0].reason.starts_with("best of 1 feasible options"), "{}", why[0].reason);
        assert_eq!(hosts[0].used.get("cpu"), 6000, "the choice reserves the host");
    }
}
