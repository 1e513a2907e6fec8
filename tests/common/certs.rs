//! Certificates for tests: CAs and leaf certificates made with rcgen, written to files the
//! server reads.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

pub struct Ca {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// (certificate PEM, key PEM)
pub type Leaf = (String, String);

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = p.self_signed(&key).expect("ca");
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(p, key),
        }
    }

    /// A certificate for `names` (DNS names or IP addresses) usable as `usages`.
    pub fn leaf(&self, name: &str, names: &[&str], usages: &[ExtendedKeyUsagePurpose]) -> Leaf {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = usages.to_vec();
        let cert = p.signed_by(&key, &self.issuer).expect("leaf");
        (cert.pem(), key.serialize_pem())
    }
}

pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

/// The files of the test cluster's mutual TLS: one CA, and a certificate for 127.0.0.1 that
/// every test replica serves and presents (made once per test binary).
pub struct ClusterCerts {
    pub dir: PathBuf,
    pub ca: String,
    pub cert: String,
    pub key: String,
}

pub fn cluster_certs() -> &'static ClusterCerts {
    static CERTS: OnceLock<ClusterCerts> = OnceLock::new();
    CERTS.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("durin-cluster-tls")
            .tempdir()
            .expect("tempdir")
            .keep();
        let ca = Ca::new("durin-test-cluster-ca");
        let (cert, key) = ca.leaf(
            "replica",
            &["127.0.0.1"],
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        );
        ClusterCerts {
            ca: write(&dir, "ca.crt", &ca.pem),
            cert: write(&dir, "tls.crt", &cert),
            key: write(&dir, "tls.key", &key),
            dir,
        }
    })
}

/// The flags that make a test replica talk to the others over mutual TLS.
pub fn cluster_tls_args() -> Vec<String> {
    let c = cluster_certs();
    vec![
        format!("--cluster-tls-cert={}", c.cert),
        format!("--cluster-tls-key={}", c.key),
        format!("--cluster-tls-ca={}", c.ca),
    ]
}
