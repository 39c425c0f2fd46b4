//! A local bundle directory (what `pull` writes; see `layout`) as an object source.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::layout::object_path;
use crate::objects::{ObjectInfo, ObjectSource, SourceError};

pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    pub fn open(root: &Path) -> Result<DirSource, SourceError> {
        if !root.is_dir() {
            return Err(SourceError::Invalid(format!("{} is not a directory", root.display())));
        }
        Ok(DirSource { root: root.to_path_buf() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl ObjectSource for DirSource {
    fn describe(&self) -> String {
        format!("bundle directory {}", self.root.display())
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, SourceError> {
        let dir = object_path(&self.root, prefix.trim_end_matches('/'))?;
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(SourceError::io("listing", &dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(SourceError::io("listing", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Dot files are temporaries of an interrupted write.
            if name.starts_with('.') {
                continue;
            }
            let meta = entry.metadata().map_err(SourceError::io("reading", entry.path()))?;
            if meta.is_file() {
                out.push(ObjectInfo { key: format!("{prefix}{name}"), size: meta.len() });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn read_into(&self, key: &str, buf: &mut Vec<u8>) -> Result<bool, SourceError> {
        let path = object_path(&self.root, key)?;
        let mut f = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(SourceError::io("opening", path)(e)),
        };
        buf.clear();
        // Sized up front: growing the buffer while reading would copy it over and over.
        let len = f.metadata().map_err(SourceError::io("reading", &path))?.len();
        buf.reserve(len as usize);
        f.read_to_end(buf).map_err(SourceError::io("reading", &path))?;
        Ok(true)
    }

    fn sessions(&self) -> Result<Vec<String>, SourceError> {
        let dir = self.root.join("sessions");
        let mut out = Vec::new();
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries {
                let entry = entry.map_err(SourceError::io("listing", &dir))?;
                if entry.path().is_dir() {
                    out.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_files_under_a_prefix_and_skips_temporaries() {
        let d = tempfile::tempdir().unwrap();
        let seg = d.path().join("sessions/k/segments");
        fs::create_dir_all(&seg).unwrap();
        fs::write(seg.join("b.seg"), b"12").unwrap();
        fs::write(seg.join("a.seg"), b"1").unwrap();
        fs::write(seg.join(".a.seg.tmp-1"), b"x").unwrap();
        let s = DirSource::open(d.path()).unwrap();
        let l = s.list("sessions/k/segments/").unwrap();
        assert_eq!(
            l,
            vec![
                ObjectInfo { key: "sessions/k/segments/a.seg".into(), size: 1 },
                ObjectInfo { key: "sessions/k/segments/b.seg".into(), size: 2 },
            ]
        );
        assert!(s.list("sessions/other/segments/").unwrap().is_empty());
        assert_eq!(s.read("sessions/k/segments/b.seg").unwrap(), Some(b"12".to_vec()));
        assert_eq!(s.read("sessions/k/segments/c.seg").unwrap(), None);
        assert_eq!(s.sessions().unwrap(), vec!["k".to_string()]);
    }
}
