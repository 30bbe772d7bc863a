//! TLS for the crate's HTTP clients (webhooks, Twilio callbacks, prechecks, the command-line
//! client): rustls with the *ring* crypto provider, certificates checked by the platform's
//! verifier. Every `reqwest` client is built from [`client_builder`], which installs the
//! provider first: `reqwest` itself brings none.

/// A `reqwest` client builder with the crate's TLS provider installed.
pub fn client_builder() -> reqwest::ClientBuilder {
    install_provider();
    reqwest::Client::builder()
}

/// Makes *ring* the process's rustls provider, unless one is installed already.
fn install_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // An error means another thread installed one in between: one is there either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clients_build_with_the_ring_provider() {
        assert!(super::client_builder().build().is_ok());
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
