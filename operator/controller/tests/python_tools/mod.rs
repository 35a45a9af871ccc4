//! Running the Python validators of `tests/requirements.txt` from Rust tests.
//!
//! The test script creates the virtual environment and exports `MEGALIS_PYTHON`; these tests
//! refuse to run without it rather than silently skipping what they check.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn python() -> PathBuf {
    match std::env::var_os("MEGALIS_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => panic!(
            "MEGALIS_PYTHON is not set: create a venv with `pip install -r tests/requirements.txt` \
             and export MEGALIS_PYTHON=/path/to/venv/bin/python (scripts/test.sh does this)"
        ),
    }
}

pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// Runs the interpreter with `args`; returns (success, stdout, stderr).
pub fn run(args: &[&dyn AsRef<std::ffi::OsStr>], cwd: &Path) -> (bool, String, String) {
    let output = Command::new(python())
        .args(args.iter().map(|a| a.as_ref()))
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", python().display()));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
