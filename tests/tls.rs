//! TLS against a real server: the sandbox serving a self-signed certificate.

use cutover::db::{Conn, Source, Target};
use cutover::sandbox::{Sandbox, SandboxOptions};

async fn ssl_in_use(conn: &Conn) -> bool {
    conn.client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn sslmodes_against_a_tls_server() {
    let sandbox = tokio::task::spawn_blocking(|| {
        Sandbox::start(&SandboxOptions {
            replica: false,
            durable: false,
            tls: true,
            target: false,
        })
    })
    .await
    .unwrap()
    .expect("TLS sandbox");
    let ca = sandbox.ca_cert().expect("certificate");
    let base = format!(
        "postgres://postgres:secret-pw@127.0.0.1:{}/postgres",
        sandbox.primary.port
    );
    let connect = |query: String| {
        let url = format!("{base}?{query}");
        async move {
            let target = Target::parse(&url, Source::Flag).unwrap();
            Conn::connect(&target).await
        }
    };
    // require: encrypted (the certificate is not checked, as in libpq).
    let c = connect("sslmode=require".into()).await.expect("require");
    assert!(ssl_in_use(&c).await);
    // verify-full with the server's CA: encrypted and verified.
    let c = connect(format!("sslmode=verify-full&sslrootcert={}", ca.display()))
        .await
        .expect("verify-full with the right CA");
    assert!(ssl_in_use(&c).await);
    // verify-ca too.
    let c = connect(format!("sslmode=verify-ca&sslrootcert={}", ca.display()))
        .await
        .expect("verify-ca");
    assert!(ssl_in_use(&c).await);
    // verify-full against a CA that did not sign it: refused, and the
    // error names the target without the password.
    let other = tempfile::NamedTempFile::new().unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-new",
            "-x509",
            "-days",
            "1",
            "-nodes",
            "-subj",
            "/CN=other",
        ])
        .arg("-keyout")
        .arg(format!("{}.key", other.path().display()))
        .arg("-out")
        .arg(other.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = connect(format!(
        "sslmode=verify-full&sslrootcert={}",
        other.path().display()
    ))
    .await
    .err()
    .expect("an unknown CA is refused")
    .to_string();
    assert!(err.contains("127.0.0.1"), "{err}");
    assert!(!err.contains("secret-pw"), "{err}");
    // disable: plain TCP.
    let c = connect("sslmode=disable".into()).await.expect("disable");
    assert!(!ssl_in_use(&c).await);
    sandbox.stop();
}
