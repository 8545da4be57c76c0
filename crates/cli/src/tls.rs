//! `zonal up --tls`: a local certificate authority and one certificate per daemon (rcgen,
//! ECDSA P-256), under `<state>/tls/` (directory 0700, private keys 0600):
//!
//! * `ca.pem`, `ca.key` — the CA, made once and kept (10 years): restarted daemons and
//!   adopted instances go on trusting the same CA.
//! * `domain.pem|key`, `zone-<name>.pem|key` — made afresh, signed by the CA, at every
//!   `zonal up --tls` (valid 365 days), for `127.0.0.1`, `::1` and `localhost`.
//!
//! Clients verify against `ca.pem`: the CLI (the context's `ca`), the domain calling zones
//! and zones calling the domain (`--tls-ca`), instances calling their zone (`ZONAL_CA_PEM`).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

use crate::Failure;

/// What a daemon is given to serve HTTPS.
pub struct DaemonCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The local CA of a `zonal up --tls` state directory.
pub struct LocalCa {
    pub dir: PathBuf,
    /// The CA certificate every client trusts.
    pub cert: PathBuf,
    params: CertificateParams,
    key: KeyPair,
}

const CA_NAME: &str = "Zonal local CA";
const DAY_MS: u64 = 86_400_000;

fn fail(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::new(1, format!("{what}: {e}"))
}

/// Valid from the start of the UTC day of `from_ms` to the start of the day of `to_ms`.
fn validity(p: &mut CertificateParams, from_ms: u64, to_ms: u64) {
    let (y, m, d) = zonal_proto::civil_date(from_ms);
    p.not_before = rcgen::date_time_ymd(y as i32, m as u8, d as u8);
    let (y, m, d) = zonal_proto::civil_date(to_ms);
    p.not_after = rcgen::date_time_ymd(y as i32, m as u8, d as u8);
}

fn ca_params(now: u64) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    dn.push(DnType::OrganizationName, "Zonal");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    validity(&mut p, now.saturating_sub(DAY_MS), now + 3653 * DAY_MS);
    p
}

fn write_private(path: &Path, text: &str) -> Result<(), Failure> {
    zonal_domain::write_secret(path, text).map_err(|e| Failure::new(1, e))
}

fn write_public(path: &Path, text: &str) -> Result<(), Failure> {
    std::fs::write(path, text).map_err(|e| fail(&format!("cannot write {}", path.display()), e))
}

impl LocalCa {
    /// Opens the CA under `dir`, making it (and `dir`, 0700) on first use.
    pub fn open_or_create(dir: &Path) -> Result<Self, Failure> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).map_err(|e| fail(&format!("cannot create {}", dir.display()), e))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| fail(&format!("cannot make {} private", dir.display()), e))?;
        let cert = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        let now = zonal_proto::now_ms();
        let params = ca_params(now);
        let key = match std::fs::read_to_string(&key_path) {
            Ok(pem) if cert.exists() => KeyPair::from_pem(&pem).map_err(|e| {
                fail(
                    &format!("{}: not a private key (remove {} to make a new CA)", key_path.display(), dir.display()),
                    e,
                )
            })?,
            _ => {
                let key = KeyPair::generate().map_err(|e| fail("cannot make the CA key", e))?;
                let ca = params.clone().self_signed(&key).map_err(|e| fail("cannot make the CA certificate", e))?;
                write_private(&key_path, &key.serialize_pem())?;
                write_public(&cert, &ca.pem())?;
                key
            }
        };
        Ok(LocalCa { dir: dir.to_path_buf(), cert, params, key })
    }

    /// A certificate for daemon `name` (`domain`, `zone-<z>`) signed by this CA, written as
    /// `<name>.pem` and `<name>.key` (0600).
    pub fn issue(&self, name: &str) -> Result<DaemonCert, Failure> {
        // The issuer rcgen signs with: the CA's name, key usages and key (its own signature
        // and validity play no part in the leaf).
        let issuer = self.params.clone().self_signed(&self.key).map_err(|e| fail("cannot load the CA", e))?;
        let sans = vec!["127.0.0.1".to_string(), "::1".to_string(), "localhost".to_string()];
        let mut p = CertificateParams::new(sans).map_err(|e| fail("certificate names", e))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("zonal {name}"));
        p.distinguished_name = dn;
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.use_authority_key_identifier_extension = true;
        let now = zonal_proto::now_ms();
        validity(&mut p, now.saturating_sub(DAY_MS), now + 365 * DAY_MS);
        let key = KeyPair::generate().map_err(|e| fail(&format!("cannot make the key of {name}"), e))?;
        let cert = p.signed_by(&key, &issuer, &self.key).map_err(|e| fail(&format!("cannot sign {name}"), e))?;
        let out = DaemonCert { cert: self.dir.join(format!("{name}.pem")), key: self.dir.join(format!("{name}.key")) };
        write_private(&out.key, &key.serialize_pem())?;
        write_public(&out.cert, &cert.pem())?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_kept_and_certificates_chain_to_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let tls = dir.path().join("tls");
        let ca = LocalCa::open_or_create(&tls).expect("ca");
        let first = std::fs::read_to_string(&ca.cert).expect("ca.pem");
        let d = ca.issue("domain").expect("issue");
        for (p, mode) in [(&tls, 0o700), (&tls.join("ca.key"), 0o600), (&d.key, 0o600)] {
            assert_eq!(std::fs::metadata(p).expect("meta").permissions().mode() & 0o777, mode, "{}", p.display());
        }
        let again = LocalCa::open_or_create(&tls).expect("reopen");
        assert_eq!(std::fs::read_to_string(&again.cert).expect("ca.pem"), first, "the CA is kept");
        // Served with the certificate, verified against the CA (both ends of rustls).
        let z = again.issue("zone-a").expect("issue");
        for c in [&d, &z] {
            let cert = std::fs::read(&c.cert).expect("cert");
            let key = std::fs::read(&c.key).expect("key");
            zonal_proto::server::TlsIdentity::from_pem(&cert, &key).expect("identity");
        }
    }
}
