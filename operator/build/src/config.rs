//! The `megalis.toml` the server reads. Secrets never appear here: they reach the pod as files
//! (`MEGALIS_*_FILE`) or environment from Secret references, set by the Deployment.

use megalis_operator_api::{LogFormat, PlatformMode, TokenAlgorithm};
use ring::digest;
use toml::{Table, Value};

use crate::layout::*;
use crate::{BuildError, Ctx};

pub fn render(ctx: &Ctx<'_>) -> Result<String, BuildError> {
    let spec = ctx.spec();
    let mut root = Table::new();
    root.insert("data_dir".into(), DATA_DIR.into());
    let mode = match spec.mode {
        PlatformMode::Production => "production",
        PlatformMode::Test => "test",
        PlatformMode::Demo => "demo",
    };
    root.insert("mode".into(), mode.into());
    root.insert(
        "public_url".into(),
        format!("https://{}", spec.public_host).into(),
    );
    root.insert(
        "trusted_proxies".into(),
        strings(&spec.ingress.trusted_proxies),
    );
    // The ingress terminates the public TLS: it talks plain HTTP to the pods, inside the
    // NetworkPolicy that only lets the ingress controller in.
    root.insert(
        "plain_http_listen".into(),
        format!("0.0.0.0:{HTTP_PORT}").into(),
    );
    if spec.server_tls_secret.is_some() {
        root.insert("listen".into(), format!("0.0.0.0:{HTTPS_PORT}").into());
        root.insert(
            "tls".into(),
            table([
                ("cert", format!("{TLS_DIR}/tls.crt").into()),
                ("key", format!("{TLS_DIR}/tls.key").into()),
            ]),
        );
    }
    if let Some(mtls) = &spec.mtls {
        root.insert(
            "mtls_listen".into(),
            format!("0.0.0.0:{}", mtls.port).into(),
        );
        let mut cps: Table = table([("ca", format!("{CPS_DIR}/ca.crt").into())]);
        if mtls.crl {
            cps.insert("crl".into(), format!("{CPS_DIR}/crl.pem").into());
        }
        if let Some(host) = &mtls.host {
            cps.insert(
                "public_url".into(),
                format!("https://{host}:{}", mtls.port).into(),
            );
        }
        root.insert("cps".into(), cps.into());
    }

    if let Some(pg) = &spec.database.postgres
        && let Some(max) = pg.max_connections
    {
        root.insert(
            "database".into(),
            table([("max_connections", i64::from(max).into())]),
        );
    }

    let format = match spec.log.format {
        LogFormat::Text => "text",
        LogFormat::Json => "json",
    };
    root.insert(
        "log".into(),
        table([
            ("format", format.into()),
            ("level", spec.log.level.clone().into()),
        ]),
    );

    let blobs = match &spec.blobs.s3 {
        Some(s3) => {
            let mut blobs: Table = table([
                ("backend", "s3".into()),
                ("s3_bucket", s3.bucket.clone().into()),
                ("s3_region", s3.region.clone().into()),
            ]);
            if let Some(endpoint) = &s3.endpoint {
                blobs.insert("s3_endpoint".into(), endpoint.clone().into());
            }
            blobs
        }
        None => table([
            ("backend", "local".into()),
            ("path", format!("{DATA_DIR}/blobs").into()),
        ]),
    };
    root.insert("blobs".into(), blobs.into());

    root.insert(
        "audit".into(),
        table([
            ("signing_key", format!("{AUDIT_DIR}/signing.key").into()),
            (
                "checkpoint_interval",
                spec.audit.checkpoint_interval.clone().into(),
            ),
        ]),
    );
    root.insert(
        "shutdown".into(),
        table([(
            "grace_period",
            format!("{}s", spec.shutdown_grace_period_seconds).into(),
        )]),
    );
    if let Some(mllp) = &spec.mllp {
        let port = mllp.port.unwrap_or(MLLP_PORT);
        // Outside loopback the server requires TLS with client certificates on MLLP (hospital
        // systems authenticate with the certificate registered to their OAuth client).
        root.insert(
            "mllp".into(),
            table([
                ("listen", format!("0.0.0.0:{port}").into()),
                ("tls", true.into()),
            ]),
        );
    }
    // spec.dicom gets its Service, container port and NetworkPolicy (so that hospital networks
    // are declared once), but no server key: the DICOM DIMSE gateway comes with the imaging
    // plugin, and a server refuses keys it does not know. See docs/operator-guide.md.
    if let Some(oidc) = &spec.oidc {
        root.insert(
            "oidc".into(),
            table([
                ("upstream_issuer", oidc.upstream_issuer.clone().into()),
                ("upstream_client_id", oidc.upstream_client_id.clone().into()),
            ]),
        );
    }
    if let Some(auth) = &spec.auth {
        let algorithm = match auth.access_token_algorithm {
            TokenAlgorithm::ES256 => "ES256",
            TokenAlgorithm::RS256 => "RS256",
        };
        root.insert(
            "auth".into(),
            table([("access_token_algorithm", algorithm.into())]),
        );
    }
    // Keys of features the resource does not use are left out, not just empty: a server older
    // than the feature refuses keys it does not know.
    if !spec.plugins.is_empty() {
        root.insert("plugins".into(), table([("config", PLUGINS_FILE.into())]));
    }

    let body = toml::to_string(&root)?;
    Ok(format!(
        "# Rendered by megalis-operator from RegionalPlatform {}/{}; edit the resource, not this file.\n{body}",
        ctx.namespace, ctx.name
    ))
}

/// Digest over everything that needs a pod restart to take effect: the server configuration
/// and the set of modules the init container fetched. Grants, limits and plugin configuration
/// live in plugins.toml, which the server watches, so they do not roll the pods.
pub fn checksum(megalis_toml: &str, modules: &[crate::plugins::LoadedPlugin]) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(megalis_toml.as_bytes());
    for module in modules {
        ctx.update(b"\0");
        ctx.update(module.sha256.as_bytes());
    }
    hex::encode(ctx.finish().as_ref())
}

fn table<T: From<Table>, const N: usize>(entries: [(&str, Value); N]) -> T {
    T::from(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<Table>(),
    )
}

fn strings(values: &[String]) -> Value {
    Value::Array(values.iter().cloned().map(Value::from).collect())
}
