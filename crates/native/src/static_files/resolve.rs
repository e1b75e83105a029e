//! From a request path to the file to send, without ever leaving the
//! directory: the refusals (400 for NUL, backslash or an encoded
//! separator; 404 for `..`, hidden names (unless served), symlinks out,
//! anything not a regular file, a file named with a trailing `/`), the 301 to a directory's slashed path, the index file,
//! and the choice of a precompressed sibling by `Accept-Encoding`.

use std::fs::{File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{not_found, Refuse, StaticFiles, LOCATION_SAFE, PRECOMPRESSED};
use crate::header;
use qiao_http::fields;
use qiao_http::path::quote;
use qiao_io::service::Exchange;

impl StaticFiles {
    /// The real path of the file the decoded `path` names.
    pub(super) fn resolve(
        &self,
        ex: &Exchange<'_>,
        raw: &[u8],
        path: &[u8],
    ) -> Result<PathBuf, Refuse> {
        let lower = raw.to_ascii_lowercase();
        let encoded_sep = [&b"%2f"[..], b"%5c", b"%00"]
            .iter()
            .any(|e| lower.windows(3).any(|w| w == *e));
        if encoded_sep || path.contains(&0) || path.contains(&b'\\') {
            return Err(Refuse::status(400, "Bad Request"));
        }
        let rel = path.get(self.prefix.len()..).unwrap_or_default();
        let rel = std::str::from_utf8(rel).map_err(|_| not_found())?;
        let parts: Vec<&str> = rel
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if parts.contains(&"..") {
            return Err(not_found());
        }
        let mut candidate = self.root.clone();
        candidate.extend(&parts);
        let real = self.contained(&candidate)?;
        if !real.is_dir() {
            // `a.txt/` names a directory: a file is not one (nginx: 404).
            if names_directory(rel) {
                return Err(not_found());
            }
            return Ok(real);
        }
        let Some(index) = &self.opts.index else {
            return Err(not_found());
        };
        if !rel.ends_with('/') {
            let mut location = quote(path, LOCATION_SAFE);
            location.push(b'/');
            let query = ex.bytes(&ex.head.query);
            if !query.is_empty() {
                location.push(b'?');
                location.extend_from_slice(query);
            }
            return Err(Refuse(
                301,
                "Moved Permanently",
                vec![(b"Location", location)],
            ));
        }
        self.contained(&real.join(index))
    }

    /// `candidate`'s real path if it lies inside the root and no part of it
    /// below the root is hidden (unless hidden names are served).
    fn contained(&self, candidate: &Path) -> Result<PathBuf, Refuse> {
        let real = std::fs::canonicalize(candidate).map_err(|_| not_found())?;
        let inside = real.strip_prefix(&self.root).map_err(|_| not_found())?;
        if !self.opts.hidden
            && inside
                .components()
                .any(|c| c.as_os_str().as_bytes().starts_with(b"."))
        {
            return Err(not_found());
        }
        Ok(real)
    }

    /// The file to send: the precompressed sibling the client accepts if
    /// one exists, else the file itself; with its coding, and whether the
    /// answer varies by `Accept-Encoding` (some sibling exists).
    pub(super) fn choose(
        &self,
        ex: &Exchange<'_>,
        real: &Path,
    ) -> Result<(File, std::fs::Metadata, Option<&'static str>, bool), Refuse> {
        let mut siblings: Vec<(&'static str, PathBuf)> = Vec::new();
        for (coding, suffix) in PRECOMPRESSED {
            let mut name = real.as_os_str().to_owned();
            name.push(suffix);
            let sibling = PathBuf::from(name);
            if sibling.is_file() {
                siblings.push((coding, sibling));
            }
        }
        let available: Vec<&str> = siblings.iter().map(|(c, _)| *c).collect();
        let accept = header(ex, b"accept-encoding");
        if let Some(chosen) = fields::choose_coding(accept.as_deref(), &available) {
            let (_, sibling) = siblings.iter().find(|(c, _)| *c == chosen).expect("listed");
            if let Some((file, meta)) = self.contained(sibling).ok().and_then(|p| open(&p)) {
                return Ok((file, meta, Some(chosen), true));
            }
        }
        let (file, meta) = open(real).ok_or_else(not_found)?;
        Ok((file, meta, None, !siblings.is_empty()))
    }
}

/// Whether a relative path can only name a directory: it ends with `/`
/// or `/.` (`..` is refused before).
fn names_directory(rel: &str) -> bool {
    rel.ends_with('/') || rel.ends_with("/.") || rel == "."
}

/// Opens a regular file without following a final symlink or blocking on
/// a FIFO; None if it is anything else or cannot be opened.
fn open(path: &Path) -> Option<(File, std::fs::Metadata)> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    meta.is_file().then_some((file, meta))
}
