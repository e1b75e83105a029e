//! The environ entries of a request that came over TLS (mod_ssl's names),
//! and the template a TLS request's environ is copied from.
//!
//! Why a template of its own, and why it learns: every TLS request carries
//! `HTTPS`, the https scheme, `SSL_PROTOCOL`, `SSL_CIPHER` and
//! `SSL_CLIENT_VERIFY`. Setting five keys per request costs a dict
//! lookup and insert each, on top of the copy; in a worker nearly every
//! connection negotiates the same protocol and cipher suite, and most
//! send no client certificate. So the TLS template holds the constant
//! entries and `SSL_CLIENT_VERIFY=NONE` from the start, and the protocol
//! and cipher of the last connection that differed: a request whose
//! connection matches sets none of them. A request over another
//! connection (an older client on TLS 1.2, another cipher suite) first
//! makes the template its own (two sets, what every request used to
//! cost), and one with a client certificate sets its entries over the
//! copy, so what the application sees is always its own connection's
//! facts (`tests/e2e/test_tls_requests.py` mixes them in one worker).
//! The copy of a template is shallow and its values are immutable `str`s,
//! so sharing them between environs is invisible to the application.

use std::sync::{Mutex, MutexGuard, TryLockError};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use qiao_io::listener::TlsFacts;

use super::environ::EnvironCache;

/// The environ entries of every request that came over TLS, whatever its
/// connection: they are in the TLS template (`environ_template` in
/// `setup/python.rs`), so a TLS request starts with them. A trusted proxy's
/// `X-Forwarded-Proto` may still override the scheme; a client
/// certificate turns `SSL_CLIENT_VERIFY` into `SUCCESS`.
pub const TLS_CONSTANT: [(&str, &str); 3] = [
    ("wsgi.url_scheme", "https"),
    ("HTTPS", "on"),
    ("SSL_CLIENT_VERIFY", "NONE"),
];

/// The entries every TLS request has whose value depends on the
/// connection: placeholders in the template until the first TLS request
/// fills them in ([`TlsTemplate::environ_for`]).
pub const TLS_LEARNED: [&str; 2] = ["SSL_PROTOCOL", "SSL_CIPHER"];

/// The TLS environ template, and the connection facts it holds.
pub struct TlsTemplate {
    dict: Py<PyDict>,
    /// `(SSL_PROTOCOL, SSL_CIPHER)` as the template holds them: those of
    /// the last request whose connection differed (empty before the
    /// first). Only taken with the GIL held, so hardly ever contended; a
    /// mutex because the template is shared by the serving threads.
    holds: Mutex<(String, String)>,
}

impl TlsTemplate {
    /// `dict` holds [`TLS_CONSTANT`] and a placeholder for each of
    /// [`TLS_LEARNED`].
    pub fn new(dict: Py<PyDict>) -> TlsTemplate {
        TlsTemplate {
            dict,
            holds: Mutex::new((String::new(), String::new())),
        }
    }

    /// A new environ for a request over the connection `tls`: a copy of
    /// the template, made to hold this connection's protocol and cipher
    /// first if it held another's, with the client certificate's entries
    /// if there is one. The copy is made under the lock, so no other
    /// thread changes the template between the two.
    ///
    /// The lock is only tried, never waited for: the thread holding it
    /// holds the GIL too, unless its copy let the GIL go (an allocation
    /// that ran the garbage collector, whose finalizers run Python code),
    /// and waiting for it with the GIL held would then never end. A
    /// request that finds the lock taken sets its own entries over a copy.
    pub fn environ_for<'py>(
        &self,
        py: Python<'py>,
        tls: &TlsFacts,
        cache: &mut EnvironCache,
    ) -> PyResult<Bound<'py, PyDict>> {
        let dict = self.dict.bind(py);
        let environ = match self.holds.try_lock() {
            Ok(holds) => self.copy_learning(py, holds, tls, cache)?,
            Err(TryLockError::Poisoned(p)) => self.copy_learning(py, p.into_inner(), tls, cache)?,
            Err(TryLockError::WouldBlock) => {
                let environ = dict.copy()?;
                set_learned(py, &environ, tls, cache)?;
                environ
            }
        };
        set_client_cert(py, &environ, tls)?;
        Ok(environ)
    }

    /// The copy, with the template made to hold `tls`'s entries first.
    fn copy_learning<'py>(
        &self,
        py: Python<'py>,
        mut holds: MutexGuard<'_, (String, String)>,
        tls: &TlsFacts,
        cache: &mut EnvironCache,
    ) -> PyResult<Bound<'py, PyDict>> {
        let dict = self.dict.bind(py);
        if holds.0 != tls.protocol || holds.1 != tls.cipher {
            set_learned(py, dict, tls, cache)?;
            holds.0.clone_from(&tls.protocol);
            holds.1.clone_from(&tls.cipher);
        }
        dict.copy()
    }
}

/// `SSL_PROTOCOL` and `SSL_CIPHER` of the connection `tls` in `dict`.
fn set_learned<'py>(
    py: Python<'py>,
    dict: &Bound<'py, PyDict>,
    tls: &TlsFacts,
    cache: &mut EnvironCache,
) -> PyResult<()> {
    // The same few names on every connection: from the value cache.
    let protocol = cache.value(py, tls.protocol.as_bytes());
    dict.set_item(intern!(py, "SSL_PROTOCOL"), protocol)?;
    let cipher = cache.value(py, tls.cipher.as_bytes());
    dict.set_item(intern!(py, "SSL_CIPHER"), cipher)
}

/// The client certificate's entries, when the client sent one.
fn set_client_cert<'py>(
    py: Python<'py>,
    environ: &Bound<'py, PyDict>,
    tls: &TlsFacts,
) -> PyResult<()> {
    if let Some(dn) = &tls.client_subject {
        environ.set_item(intern!(py, "SSL_CLIENT_S_DN"), dn)?;
        environ.set_item(intern!(py, "SSL_CLIENT_VERIFY"), intern!(py, "SUCCESS"))?;
    }
    if let Some(pem) = &tls.client_cert_pem {
        environ.set_item(intern!(py, "SSL_CLIENT_CERT"), pem)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(protocol: &str, cipher: &str) -> TlsFacts {
        TlsFacts {
            protocol: protocol.into(),
            cipher: cipher.into(),
            ..TlsFacts::default()
        }
    }

    fn entry(environ: &Bound<'_, PyDict>, key: &str) -> Option<String> {
        let value = environ.get_item(key).expect("a str key");
        value.map(|v| v.extract().expect("a str value"))
    }

    /// Connections of two kinds take turns, then the lock is held as by a
    /// thread whose copy let the GIL go; then a client certificate and
    /// none. Every environ holds its own connection's entries, and the
    /// held lock is not waited for (waiting would never end here).
    #[test]
    fn every_environ_holds_its_connection_s_entries() {
        Python::initialize();
        Python::attach(|py| {
            let dict = PyDict::new(py);
            for (key, value) in TLS_CONSTANT {
                dict.set_item(key, value).unwrap();
            }
            for key in TLS_LEARNED {
                dict.set_item(key, "").unwrap();
            }
            let template = TlsTemplate::new(dict.unbind());
            let mut cache = EnvironCache::default();
            let v13 = facts("TLSv1.3", "TLS_AES_256_GCM_SHA384");
            let v12 = facts("TLSv1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
            let mut check = |tls: &TlsFacts| {
                let environ = template.environ_for(py, tls, &mut cache).unwrap();
                assert_eq!(entry(&environ, "SSL_PROTOCOL").unwrap(), tls.protocol);
                assert_eq!(entry(&environ, "SSL_CIPHER").unwrap(), tls.cipher);
                assert_eq!(entry(&environ, "HTTPS").unwrap(), "on");
                let verify = if tls.client_subject.is_some() {
                    "SUCCESS"
                } else {
                    "NONE"
                };
                assert_eq!(entry(&environ, "SSL_CLIENT_VERIFY").unwrap(), verify);
                assert_eq!(entry(&environ, "SSL_CLIENT_S_DN"), tls.client_subject);
                assert_eq!(entry(&environ, "SSL_CLIENT_CERT"), tls.client_cert_pem);
            };
            for tls in [&v13, &v12, &v13, &v13, &v12] {
                check(tls);
            }
            {
                let _inside = template.holds.lock().unwrap();
                for tls in [&v13, &v12, &v13] {
                    check(tls);
                }
            }
            let certified = TlsFacts {
                client_subject: Some("CN=client".into()),
                client_cert_pem: Some("-----BEGIN CERTIFICATE-----".into()),
                ..v13.clone()
            };
            for tls in [&certified, &v13, &certified, &v12] {
                check(tls);
            }
        });
    }
}
