//! A node's `postgresql.conf`: the sandbox's settings and, for TLS, a
//! certificate signed by a scratch CA.

use std::path::Path;
use std::process::Command;

use super::SandboxError;
use super::SandboxOptions;
use super::process::RunAs;

/// Appends the sandbox's settings to a fresh data directory's config.
pub(super) fn write_config(data_dir: &Path, opts: &SandboxOptions) -> Result<(), SandboxError> {
    let durable = if opts.durable { "on" } else { "off" };
    let wal_level = if opts.target { "logical" } else { "replica" };
    let settings = format!(
        "\n# cutover sandbox\n\
         listen_addresses = '127.0.0.1'\n\
         wal_level = {wal_level}\n\
         max_wal_senders = 10\n\
         max_replication_slots = 10\n\
         hot_standby = on\n\
         hot_standby_feedback = on\n\
         wal_keep_size = '1GB'\n\
         max_wal_size = '4GB'\n\
         max_connections = 200\n\
         shared_buffers = '256MB'\n\
         fsync = {durable}\n\
         full_page_writes = {durable}\n\
         track_io_timing = on\n\
         log_min_messages = warning\n\
         log_line_prefix = '%m [%p] %a '\n"
    );
    let conf = data_dir.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).map_err(|e| SandboxError::io(&conf, e))?;
    text.push_str(&settings);
    std::fs::write(&conf, text).map_err(|e| SandboxError::io(&conf, e))
}

/// A scratch CA and a server certificate it signs (for 127.0.0.1 and
/// localhost), and `ssl = on`.
pub(super) fn make_certificate(
    data_dir: &Path,
    dir: &Path,
    run_as: RunAs,
) -> Result<(), SandboxError> {
    let f = |name: &str| dir.join(name).display().to_string();
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| SandboxError::io(dir, e))?;
    let steps: [Vec<String>; 3] = [
        vec![
            "req",
            "-x509",
            "-new",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=cutover sandbox CA",
        ]
        .into_iter()
        .map(String::from)
        .chain(["-keyout".into(), f("ca.key"), "-out".into(), f("ca.crt")])
        .collect(),
        vec!["req", "-new", "-nodes", "-subj", "/CN=localhost"]
            .into_iter()
            .map(String::from)
            .chain([
                "-keyout".into(),
                f("server.key"),
                "-out".into(),
                f("server.csr"),
            ])
            .collect(),
        vec!["x509", "-req", "-days", "2", "-CAcreateserial"]
            .into_iter()
            .map(String::from)
            .chain([
                "-in".into(),
                f("server.csr"),
                "-CA".into(),
                f("ca.crt"),
                "-CAkey".into(),
                f("ca.key"),
                "-extfile".into(),
                f("server.ext"),
                "-out".into(),
                f("server.crt"),
            ])
            .collect(),
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(&args)
            .output()
            .map_err(|e| SandboxError::io(Path::new("openssl"), e))?;
        if !out.status.success() {
            return Err(SandboxError::Setup {
                program: format!("openssl {}", args[0]),
                status: out.status.to_string(),
                output: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
    }
    use std::os::unix::fs::PermissionsExt;
    let (crt, key) = (dir.join("server.crt"), dir.join("server.key"));
    for file in [&crt, &key] {
        run_as.chown(file).map_err(|e| SandboxError::io(file, e))?;
    }
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| SandboxError::io(&key, e))?;
    let conf = data_dir.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).map_err(|e| SandboxError::io(&conf, e))?;
    text.push_str(&format!(
        "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
        crt.display(),
        key.display()
    ));
    std::fs::write(&conf, text).map_err(|e| SandboxError::io(&conf, e))
}
