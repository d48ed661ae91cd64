//! TLS for `sslmode=require|verify-ca|verify-full`, through rustls.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::DbError;
use super::target::TlsMode;

/// Builds the rustls client configuration for a TLS mode.
pub fn client_config(mode: TlsMode, root_cert: Option<&Path>) -> Result<ClientConfig, DbError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| DbError::Tls(e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        // libpq does not check the certificate in these modes either.
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => {
            Arc::new(AcceptAnyCert { provider })
        }
        TlsMode::VerifyCa | TlsMode::VerifyFull => {
            let roots = Arc::new(load_roots(root_cert)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| DbError::Tls(e.to_string()))?;
            if mode == TlsMode::VerifyCa {
                Arc::new(ChainOnly { inner: webpki })
            } else {
                webpki
            }
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// Root certificates: `sslrootcert`, else `~/.postgresql/root.crt`; the
/// system store only with `sslrootcert=system` (as libpq 16).
fn load_roots(root_cert: Option<&Path>) -> Result<RootCertStore, DbError> {
    let mut store = RootCertStore::empty();
    let home_root = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".postgresql/root.crt"))
        .filter(|p| p.is_file());
    let system = root_cert.is_some_and(|p| p == Path::new("system"));
    let file = root_cert
        .filter(|_| !system)
        .map(Path::to_path_buf)
        .or(home_root.clone());
    if file.is_none() && !system {
        // As libpq: verifying against whatever the system trusts (any
        // publicly issued certificate) is a choice, not a default.
        return Err(DbError::Tls(
            "sslmode=verify-ca/verify-full needs a root certificate: ~/.postgresql/root.crt does \
             not exist and sslrootcert is not set. Set sslrootcert=/path/ca.pem (or PGSSLROOTCERT), \
             or sslrootcert=system to trust the system's certificate store"
                .into(),
        ));
    }
    if let Some(path) = file {
        let certs = CertificateDer::pem_file_iter(&path).map_err(|e| {
            DbError::Tls(format!(
                "cannot read sslrootcert {}: {e}; point sslrootcert at a PEM CA bundle",
                path.display()
            ))
        })?;
        for cert in certs {
            let cert = cert
                .map_err(|e| DbError::Tls(format!("bad certificate in {}: {e}", path.display())))?;
            store
                .add(cert)
                .map_err(|e| DbError::Tls(format!("{}: {e}", path.display())))?;
        }
    } else {
        let found = rustls_native_certs::load_native_certs();
        store.add_parsable_certificates(found.certs);
    }
    if store.is_empty() {
        return Err(DbError::Tls(
            "no root certificates to verify the server against; set sslrootcert=/path/ca.pem \
             (or PGSSLROOTCERT)"
                .into(),
        ));
    }
    Ok(store)
}

/// `sslmode=require`: encrypted, certificate not checked.
#[derive(Debug)]
struct AcceptAnyCert {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `sslmode=verify-ca`: the chain must verify; the host name may differ.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_builds_a_config() {
        for mode in [TlsMode::Prefer, TlsMode::Require] {
            client_config(mode, None).unwrap();
        }
    }

    #[test]
    fn missing_root_cert_names_the_file() {
        let err = client_config(TlsMode::VerifyFull, Some(Path::new("/nonexistent/ca.pem")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        assert!(err.contains("sslrootcert"), "{err}");
    }
}
