//! TLS for the protocol front: the server configuration built once per
//! worker from `--certfile`/`--keyfile`/`--ca-certs`/`--cert-reqs`
//! (rustls 0.23 with the `ring` provider, TLS 1.2 and 1.3, ALPN `h2` and
//! `http/1.1`), and the facts of a finished handshake the environ shows
//! ([`TlsFacts`], mod_ssl's names).
//!
//! Every failure to load a file is a sentence naming the file, so the
//! worker can refuse to boot with it (`ValueError` → `WORKER_BOOT_ERROR`).

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ProtocolVersion, RootCertStore, ServerConfig, ServerConnection};

use qiao_io::listener::TlsFacts;

/// ALPN name of HTTP/2.
pub(crate) const ALPN_H2: &[u8] = b"h2";
/// ALPN name of HTTP/1.1.
pub(crate) const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Whether clients must present a certificate (`--cert-reqs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertReqs {
    /// Not asked for.
    None,
    /// Asked for; verified against `--ca-certs` when sent.
    Optional,
    /// The handshake fails without one that `--ca-certs` verifies.
    Required,
}

impl CertReqs {
    pub fn parse(text: &str) -> Result<CertReqs, String> {
        match text {
            "none" => Ok(CertReqs::None),
            "optional" => Ok(CertReqs::Optional),
            "required" => Ok(CertReqs::Required),
            _ => Err(format!(
                "cert_reqs: expected none, optional or required, got {text:?}"
            )),
        }
    }
}

/// The TLS settings of a worker.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    pub certfile: String,
    pub keyfile: String,
    pub ca_certs: Option<String>,
    pub cert_reqs: CertReqs,
    /// Offer `h2` in ALPN.
    pub http2: bool,
}

fn certs(path: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let err = |e: &dyn std::fmt::Display| format!("{what} {path}: {e}");
    let certs = CertificateDer::pem_file_iter(Path::new(path))
        .map_err(|e| err(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(&e))?;
    if certs.is_empty() {
        return Err(format!("{what} {path}: no PEM certificate in it"));
    }
    Ok(certs)
}

/// The server configuration for `settings`, or why it cannot be made.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, String> {
    let chain = certs(&settings.certfile, "certfile")?;
    let key = PrivateKeyDer::from_pem_file(Path::new(&settings.keyfile))
        .map_err(|e| format!("keyfile {}: {e}", settings.keyfile))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match (settings.cert_reqs, &settings.ca_certs) {
        (CertReqs::None, _) => builder.with_no_client_auth(),
        (_, None) => {
            return Err(
                "cert_reqs optional/required needs ca_certs (the CA to verify \
                 client certificates with)"
                    .into(),
            )
        }
        (reqs, Some(ca)) => {
            let mut roots = RootCertStore::empty();
            for c in certs(ca, "ca_certs")? {
                roots.add(c).map_err(|e| format!("ca_certs {ca}: {e}"))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if reqs == CertReqs::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| format!("ca_certs {ca}: {e}"))?,
            )
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("certfile/keyfile {}: {e}", settings.certfile))?;
    config.alpn_protocols = if settings.http2 {
        vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()]
    } else {
        vec![ALPN_HTTP11.to_vec()]
    };
    Ok(Arc::new(config))
}

/// `SSL_PROTOCOL`'s value for a version.
pub(crate) fn protocol_name(v: Option<ProtocolVersion>) -> String {
    match v {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".into(),
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".into(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// `SSL_CIPHER`'s value: the suite's IANA name. rustls names its TLS 1.3
/// suites `TLS13_…`; IANA, and OpenSSL (so mod_ssl), `TLS_…`.
pub(crate) fn cipher_name(id: rustls::CipherSuite) -> String {
    match id.as_str() {
        Some(name) => match name.strip_prefix("TLS13_") {
            Some(rest) => format!("TLS_{rest}"),
            None => name.to_owned(),
        },
        None => format!("{id:?}"),
    }
}

/// The environ's facts of an established connection. The client
/// certificate (if any) was verified by the handshake, or there would be
/// no connection.
pub fn facts(conn: &ServerConnection) -> TlsFacts {
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|s| cipher_name(s.suite()))
        .unwrap_or_default();
    let cert = conn.peer_certificates().and_then(|c| c.first());
    TlsFacts {
        protocol: protocol_name(conn.protocol_version()),
        cipher,
        client_subject: cert.map(|c| subject_dn(c.as_ref())),
        client_cert_pem: cert.map(|c| pem(c.as_ref())),
    }
}

/// The subject of a DER certificate as an RFC 4514-style string
/// (`CN=client, O=Example`); empty if it does not parse.
pub(crate) fn subject_dn(der: &[u8]) -> String {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => cert.subject().to_string(),
        Err(_) => String::new(),
    }
}

/// Feeds `bytes` (read from the socket but not yet by the session) to
/// `session`; false if they are not valid TLS.
pub(crate) fn take_early(session: &mut ServerConnection, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        match session.read_tls(&mut bytes) {
            Ok(n) if n > 0 => {}
            _ => return false,
        }
        if session.process_new_packets().is_err() {
            return false;
        }
    }
    true
}

/// A DER certificate in PEM, lines of 64 characters.
pub fn pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_reqs_parse() {
        for (text, want) in [
            ("none", Ok(CertReqs::None)),
            ("optional", Ok(CertReqs::Optional)),
            ("required", Ok(CertReqs::Required)),
        ] {
            assert_eq!(CertReqs::parse(text), want);
        }
        assert!(CertReqs::parse("yes").is_err());
    }

    #[test]
    fn protocol_names() {
        assert_eq!(protocol_name(Some(ProtocolVersion::TLSv1_3)), "TLSv1.3");
        assert_eq!(protocol_name(Some(ProtocolVersion::TLSv1_2)), "TLSv1.2");
        assert_eq!(protocol_name(None), "");
    }

    #[test]
    fn cipher_names_are_iana_names() {
        use rustls::CipherSuite as S;
        for (id, want) in [
            (S::TLS13_AES_256_GCM_SHA384, "TLS_AES_256_GCM_SHA384"),
            (
                S::TLS13_CHACHA20_POLY1305_SHA256,
                "TLS_CHACHA20_POLY1305_SHA256",
            ),
            (
                S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            ),
        ] {
            assert_eq!(cipher_name(id), want);
        }
    }

    #[test]
    fn pem_wraps_at_64() {
        let der = vec![0u8; 100];
        let p = pem(&der);
        let lines: Vec<&str> = p.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last(), Some(&"-----END CERTIFICATE-----"));
    }

    #[test]
    fn missing_files_are_named() {
        let s = TlsSettings {
            certfile: "/nonexistent/cert.pem".into(),
            keyfile: "/nonexistent/key.pem".into(),
            ca_certs: None,
            cert_reqs: CertReqs::None,
            http2: true,
        };
        let e = server_config(&s).unwrap_err();
        assert!(e.contains("/nonexistent/cert.pem"), "{e}");
    }
}
