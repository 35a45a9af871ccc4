//! The WebAssembly test plugins of `plugins/` (hello, probe, template), built once for the
//! tests that need them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Builds the plugins workspace for `wasm32-wasip2` (release) and returns the directory holding
/// `hello.wasm`, `probe.wasm` and `megalis_plugin_template.wasm`. Uses a target directory of its
/// own next to the test binaries' so it never waits on the outer build's lock; concurrent test
/// processes are serialised by cargo's lock on that directory.
pub fn test_plugins_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let target = wasm_target_dir();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .arg("build")
            .args(["--quiet", "--locked"])
            .arg("--manifest-path")
            .arg(root.join("plugins/Cargo.toml"))
            .args(["--target", "wasm32-wasip2", "--release"])
            .arg("--target-dir")
            .arg(&target)
            // Flags meant for the host build (coverage, sanitizers) must not reach wasm32.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .status()
            .expect("run cargo to build the test plugins");
        assert!(
            status.success(),
            "building plugins/ for wasm32-wasip2 failed (is the target installed? \
             `rustup target add wasm32-wasip2`)"
        );
        target.join("wasm32-wasip2/release")
    })
}

/// The bytes of one test plugin (`hello`, `probe`, `megalis_plugin_template`).
pub fn test_plugin(name: &str) -> Vec<u8> {
    let path = test_plugins_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `<target>/plugins-wasm`, found from the running test binary (`<target>/<profile>/deps/…`).
fn wasm_target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("MEGALIS_PLUGINS_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("path of the test binary");
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "deps"))
        .and_then(|deps| deps.parent()?.parent())
        .map(|target| target.join("plugins-wasm"))
        .unwrap_or_else(|| std::env::temp_dir().join("megalis-plugins-wasm"))
}
