//! Which OpenClaw runtime a restore is for (../shared/OPENCLAW.md): 2026.2.x reads the JSONL
//! transcripts directly; 2026.9.x keeps transcripts in SQLite and imports the same JSONL files
//! once, so a restore writes them and prints the import step. A version this tool does not know
//! is an error, never a guess.

use std::path::{Path, PathBuf};

use crate::cli::{Usage, usage};

/// The command that makes 2026.9.x take the restored files into its SQLite store.
pub const IMPORT_STEP: &str = "openclaw doctor --session-sqlite import --session-sqlite-all-agents";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// 2026.2.x: the JSONL files are the store.
    Jsonl { version: String },
    /// 2026.9.x: the JSONL files are import input.
    SqliteImport { version: String },
}

impl Runtime {
    /// A runtime from its version (`2026.2.3`, `2026.9.6`).
    pub fn from_version(version: &str) -> Result<Runtime, Usage> {
        let mut parts = version.trim().split('.');
        let known = match (parts.next(), parts.next().and_then(|m| m.parse::<u32>().ok())) {
            (Some("2026"), Some(2)) => Some(Runtime::Jsonl { version: version.trim().to_owned() }),
            (Some("2026"), Some(9)) => Some(Runtime::SqliteImport { version: version.trim().to_owned() }),
            _ => None,
        };
        known.ok_or_else(|| {
            usage(format!(
                "OpenClaw {version:?} is a version this tool does not know how to restore for (it knows 2026.2.x \
                 and 2026.9.x); pass --runtime with one of those only if its session store is the same"
            ))
        })
    }

    /// What to run after the restore, if anything.
    pub fn next_step(&self) -> Option<&'static str> {
        match self {
            Runtime::Jsonl { .. } => None,
            Runtime::SqliteImport { .. } => Some(IMPORT_STEP),
        }
    }
}

/// The version of the `openclaw` package behind the first `openclaw` on `path` (a `PATH` value):
/// `node_modules/.bin/openclaw` links to `node_modules/openclaw/openclaw.mjs`, next to its
/// package.json. None when there is no `openclaw` there.
pub fn installed_version(path: &std::ffi::OsStr) -> Result<Option<String>, Usage> {
    let Some(bin) = std::env::split_paths(path).map(|d| d.join("openclaw")).find(|p| p.is_file()) else {
        return Ok(None);
    };
    let package = package_json_of(&bin).ok_or_else(|| {
        usage(format!("{} is not an npm-installed openclaw; pass --runtime VERSION", bin.display()))
    })?;
    let text = std::fs::read_to_string(&package)
        .map_err(|e| usage(format!("reading {}: {e}", package.display())))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| usage(format!("{} is not JSON: {e}", package.display())))?;
    match (v["name"].as_str(), v["version"].as_str()) {
        (Some("openclaw"), Some(version)) => Ok(Some(version.to_owned())),
        _ => Err(usage(format!("{} names no openclaw version; pass --runtime VERSION", package.display()))),
    }
}

fn package_json_of(bin: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(bin).ok()?;
    real.ancestors().skip(1).map(|d| d.join("package.json")).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_versions_and_a_clear_error_for_others() {
        assert_eq!(Runtime::from_version("2026.2.3").unwrap().next_step(), None);
        assert_eq!(Runtime::from_version("2026.9.6").unwrap().next_step(), Some(IMPORT_STEP));
        let e = Runtime::from_version("2027.1.0").unwrap_err();
        assert!(e.0.contains("does not know") && e.0.contains("2027.1.0"), "{}", e.0);
        assert!(Runtime::from_version("latest").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn detects_the_installed_package() {
        let dir = std::env::temp_dir().join(format!("moltlog-runtime-{}", std::process::id()));
        let pkg = dir.join("node_modules/openclaw");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::create_dir_all(dir.join("node_modules/.bin")).unwrap();
        std::fs::write(pkg.join("package.json"), r#"{"name":"openclaw","version":"2026.9.6"}"#).unwrap();
        std::fs::write(pkg.join("openclaw.mjs"), "").unwrap();
        let link = dir.join("node_modules/.bin/openclaw");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("../openclaw/openclaw.mjs", &link).unwrap();
        let path = std::env::join_paths([dir.join("nothing"), dir.join("node_modules/.bin")]).unwrap();
        assert_eq!(installed_version(&path).unwrap().as_deref(), Some("2026.9.6"));
        assert_eq!(installed_version(std::ffi::OsStr::new("/nonexistent")).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
