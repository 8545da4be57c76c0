//! The environment a DC adaptor gives each instance (FUSION §7.6.2: zone endpoint, context
//! endpoint and root, instantiation parameters, ports).
//!
//! Ports: a component declares logical ports (`rfb`, `epg: 5001`); the adaptor maps each to
//! a real port on this machine (FUSION DCA `/ports`: private → public), so two instances
//! declaring `5001` never collide. The mapping travels in [`ZONAL_PORTS`] as
//! `name:protocol:private:public,…` (private 0 when the component declared no number).
//!
//! **Nothing else.** An instance starts with an empty environment plus [`SAFE_PATH`] as
//! `PATH`, `HOME` (its working directory), its manifest's own `env`, and the variables below.
//! Nothing of the zone manager's environment reaches it — in particular not
//! [`ZONAL_ZONE_TOKEN`], the operator's `ZONAL_TOKEN`/`ZONAL_URL`/`ZONAL_CONTEXT`, or anything
//! else the zone was started with.

/// `PATH` of every instance: the system directories only (nothing of the zone's `PATH`).
pub const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The zone's bearer token at the domain: read by `zonal zone` (its environment or
/// `--token-file`), never given to an instance.
pub const ZONAL_ZONE_TOKEN: &str = "ZONAL_ZONE_TOKEN";
/// Base URL of the zone manager, e.g. `http://127.0.0.1:41000`.
pub const ZONAL_ZONE_URL: &str = "ZONAL_ZONE_URL";
/// A file holding the zone's current URL; re-read before each report, so an instance adopted
/// by a zone manager restarted on another port still finds it. The zone keeps it in the
/// instance's working directory and gives the name relative to it ([`ZONE_URL_FILE`]): an
/// instance running under its own uid may have no right to traverse the zone's state
/// directory, so absolute paths into it would not open.
pub const ZONAL_ZONE_FILE: &str = "ZONAL_ZONE_FILE";
/// The value of [`ZONAL_ZONE_FILE`]: a file in the instance's working directory.
pub const ZONE_URL_FILE: &str = "zone.url";
pub const ZONAL_INSTANCE_ID: &str = "ZONAL_INSTANCE_ID";
/// The instance's secret: its bearer token at the zone, and the mark by which a restarted
/// zone manager recognises the process as its own (read from `/proc/<pid>/environ`).
pub const ZONAL_INSTANCE_TOKEN: &str = "ZONAL_INSTANCE_TOKEN";
/// The secret of the instance's admin API (and of its `evaluations` port): the zone sends
/// it as `Authorization: Bearer <secret>` on every call it makes there, and an instance
/// answers 401 to any request without it. Random (32 bytes, [`crate::secret`]), made for this
/// instance alone, kept in the zone's instance record; distinct from
/// [`ZONAL_INSTANCE_TOKEN`] so that a process squatting a dead instance's admin port learns
/// nothing that acts at the zone. Like every variable here it is in the instance's
/// environment only (`/proc/<pid>/environ` is readable by its own uid and root), never on a
/// command line.
pub const ZONAL_ADMIN_TOKEN: &str = "ZONAL_ADMIN_TOKEN";
pub const ZONAL_SERVICE: &str = "ZONAL_SERVICE";
pub const ZONAL_COMPONENT: &str = "ZONAL_COMPONENT";
pub const ZONAL_ZONE: &str = "ZONAL_ZONE";
pub const ZONAL_HOST: &str = "ZONAL_HOST";
/// The late-binding namespace of the instance's composite:
/// `<zone>/1.0/context/<namespace>` (FUSION `context_endpoint` + `context_root`).
pub const ZONAL_CONTEXT_URL: &str = "ZONAL_CONTEXT_URL";
/// The port map, `name:protocol:private:public,…`.
pub const ZONAL_PORTS: &str = "ZONAL_PORTS";
/// Components this one sends to (its channels' targets), comma-separated.
pub const ZONAL_PEERS: &str = "ZONAL_PEERS";
/// Instantiation parameters as a JSON object (FUSION: written to the context store).
pub const ZONAL_CONFIG: &str = "ZONAL_CONFIG";
/// Set when the zone serves HTTPS (`zonal up --tls`): the PEM text of the CA certificate
/// that signed the zone's certificate, which the instance must trust when calling
/// `ZONAL_ZONE_URL`. The PEM itself rather than a path, so that an instance running under
/// its own uid need not read anything of the zone's state directory.
pub const ZONAL_CA_PEM: &str = "ZONAL_CA_PEM";

/// The port name on which an evaluator component answers `POST /1.0/evaluations`.
pub const EVALUATIONS_PORT: &str = "evaluations";

/// One logical port and the real port it is mapped to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortMapping {
    pub name: String,
    pub protocol: String,
    /// The number the component declared (0: none).
    pub private: u16,
    /// The port the instance must listen on, on 127.0.0.1.
    pub public: u16,
}

pub fn encode_ports(ports: &[PortMapping]) -> String {
    ports.iter().map(|p| format!("{}:{}:{}:{}", p.name, p.protocol, p.private, p.public)).collect::<Vec<_>>().join(",")
}

/// Decodes a [`ZONAL_PORTS`] value; entries that do not parse are reported.
pub fn decode_ports(text: &str) -> Result<Vec<PortMapping>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let parts: Vec<&str> = item.split(':').collect();
            let bad = || format!("{ZONAL_PORTS}: {item:?} is not name:protocol:private:public");
            if parts.len() != 4 {
                return Err(bad());
            }
            Ok(PortMapping {
                name: parts[0].to_string(),
                protocol: parts[1].to_string(),
                private: parts[2].parse().map_err(|_| bad())?,
                public: parts[3].parse().map_err(|_| bad())?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_round_trip() {
        let ports = vec![
            PortMapping { name: "rfb".into(), protocol: "tcp".into(), private: 0, public: 41000 },
            PortMapping { name: "epg".into(), protocol: "tcp".into(), private: 5001, public: 41001 },
        ];
        assert_eq!(decode_ports(&encode_ports(&ports)).unwrap(), ports);
        assert!(decode_ports("rfb:tcp:x:1").is_err());
        assert!(decode_ports("").unwrap().is_empty());
    }
}
