//! Certificate credentials for the Microsoft identity platform: a client
//! assertion (RFC 7523 JWT) signed RS256 with the application's private
//! key, naming its certificate by SHA-1 thumbprint (`x5t`), audience the
//! token endpoint, issuer and subject the client id, valid ten minutes.

use super::GraphError;
use crate::sources::session_error::LinkError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;

/// The signed assertion for `client_id` at `token_url`.
pub fn client_assertion(
    cert_file: &str,
    key_file: &str,
    client_id: &str,
    token_url: &str,
) -> Result<String, GraphError> {
    let bad = |what: &str, f: &str, e: &dyn std::fmt::Display| {
        LinkError::Auth(format!("{what} {f}: {e}"))
    };
    let cert = CertificateDer::from_pem_file(cert_file)
        .map_err(|e| bad("client_certificate_file", cert_file, &e))?;
    let key =
        PrivateKeyDer::from_pem_file(key_file).map_err(|e| bad("client_key_file", key_file, &e))?;
    let pair = match &key {
        PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        _ => {
            return Err(LinkError::Auth(format!(
                "client_key_file {key_file}: not an RSA key (PKCS#8 or PKCS#1 PEM)"
            ))
            .into())
        }
    }
    .map_err(|e| bad("client_key_file", key_file, &e))?;
    let thumb = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, cert.as_ref());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let header = json!({"alg": "RS256", "typ": "JWT", "x5t": B64.encode(thumb.as_ref())});
    let claims = json!({"aud": token_url, "iss": client_id, "sub": client_id,
        "jti": format!("{:032x}", rand::random::<u128>()), "nbf": now, "iat": now, "exp": now + 600});
    let signing_input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let mut sig = vec![0; pair.public().modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| LinkError::Auth("signing the client assertion failed".into()))?;
    Ok(format!("{signing_input}.{}", B64.encode(sig)))
}
