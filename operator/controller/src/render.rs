//! `megalis-operator render` and `megalis-operator crds`: the same objects the controller would
//! apply, printed as YAML for GitOps users and for the tests.

use std::path::Path;

use kube::CustomResourceExt;
use megalis_operator_api::{Plugin, RegionalPlatform, validate_platform, validate_plugin};
use megalis_operator_build::build;
use serde::Deserialize;
use serde_json::Value;

use crate::Error;

/// Both CRDs as one multi-document YAML stream.
pub fn crds_yaml() -> Result<String, Error> {
    let mut out = String::new();
    for crd in [RegionalPlatform::crd(), Plugin::crd()] {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}

/// Reads platform and plugin resources from `files` (multi-document YAML), validates the
/// platform, and prints every object the operator would apply.
pub fn render_files(files: &[impl AsRef<Path>]) -> Result<String, Error> {
    let mut platforms = Vec::new();
    let mut plugins = Vec::new();
    for file in files {
        let path = file.as_ref().display().to_string();
        let text = std::fs::read_to_string(file.as_ref()).map_err(|source| Error::File {
            path: path.clone(),
            source,
        })?;
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = Value::deserialize(document).map_err(|source| Error::Yaml {
                path: path.clone(),
                source,
            })?;
            if value.is_null() {
                continue;
            }
            let kind = value
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let input = |e: serde_json::Error| Error::Input {
                path: path.clone(),
                message: format!("{kind}: {e}"),
            };
            match kind.as_str() {
                "RegionalPlatform" => platforms
                    .push(serde_json::from_value::<RegionalPlatform>(value).map_err(input)?),
                "Plugin" => plugins.push(serde_json::from_value::<Plugin>(value).map_err(input)?),
                other => {
                    return Err(Error::Input {
                        path,
                        message: format!(
                            "unexpected kind {other:?}: only RegionalPlatform and Plugin are rendered"
                        ),
                    });
                }
            }
        }
    }
    let [platform] =
        <[RegionalPlatform; 1]>::try_from(platforms).map_err(|found| Error::Input {
            path: "arguments".into(),
            message: format!(
                "expected exactly one RegionalPlatform, found {}",
                found.len()
            ),
        })?;
    validate_platform(&platform)?;
    // The API server would refuse these Plugins: so does render (full CEL rules).
    let name = platform.metadata.name.clone().unwrap_or_default();
    for plugin in plugins.iter().filter(|p| p.spec.platform_ref == name) {
        validate_plugin(plugin, &name)?;
    }
    let state = build(&platform, &plugins)?;
    let mut out = String::new();
    for object in &state.objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&object.object)?);
    }
    Ok(out)
}
