//! `Content-Type` of a static file by its name, matching the portable
//! `qiao.middleware.static.content_type` for the types in its own table
//! and the common ones Python's `mimetypes` knows: a file that is itself
//! compressed (`x.tar.gz`) is sent as its compression format, text types
//! get `charset=utf-8`, anything unknown is `application/octet-stream`.
//! A fixed table (not `/etc/mime.types`) so answers do not depend on the
//! host. `--static-type EXT=TYPE` overrides come before the table, with
//! the portable class's rules (a compressed file keeps its compression
//! format; a text type still gets the charset).

/// Sent for a name no table knows.
pub(crate) const DEFAULT_TYPE: &str = "application/octet-stream";

/// Suffixes that mean the file is compressed (Python's `encodings_map`),
/// and the type it is then sent as (the portable `ENCODED_FILE_TYPES`).
const ENCODED: &[(&str, &str)] = &[
    (".gz", "application/gzip"),
    (".br", "application/x-brotli"),
    (".bz2", "application/x-bzip2"),
    (".xz", "application/x-xz"),
    (".Z", DEFAULT_TYPE),
];

/// Extension → type, lower-case extensions (the portable `EXTRA_TYPES`
/// first, then common `mimetypes` entries).
const TYPES: &[(&str, &str)] = &[
    (".js", "text/javascript"),
    (".mjs", "text/javascript"),
    (".css", "text/css"),
    (".html", "text/html"),
    (".htm", "text/html"),
    (".txt", "text/plain"),
    (".md", "text/markdown"),
    (".json", "application/json"),
    (".xml", "application/xml"),
    (".svg", "image/svg+xml"),
    (".wasm", "application/wasm"),
    (".webp", "image/webp"),
    (".avif", "image/avif"),
    (".woff", "font/woff"),
    (".woff2", "font/woff2"),
    (".png", "image/png"),
    (".jpg", "image/jpeg"),
    (".jpeg", "image/jpeg"),
    (".gif", "image/gif"),
    (".ico", "image/vnd.microsoft.icon"),
    (".bmp", "image/bmp"),
    (".tif", "image/tiff"),
    (".tiff", "image/tiff"),
    (".pdf", "application/pdf"),
    (".zip", "application/zip"),
    (".tar", "application/x-tar"),
    (".csv", "text/csv"),
    (".map", "application/json"),
    (".mp3", "audio/mpeg"),
    (".mp4", "video/mp4"),
    (".webm", "video/webm"),
    (".ogg", "audio/ogg"),
    (".wav", "audio/x-wav"),
    (".ttf", "font/ttf"),
    (".otf", "font/otf"),
    (".bin", DEFAULT_TYPE),
];

/// Non-`text/*` types that are text, so get `charset=utf-8` too.
const TEXT_TYPES: &[&str] = &[
    "application/json",
    "application/xml",
    "application/javascript",
    "image/svg+xml",
];

/// The `Content-Type` of a file named `name` (its last path segment);
/// `overrides`: `(lower-case extension with its dot, type)` pairs, tried
/// before the table (the portable `types=`).
pub(crate) fn content_type(name: &str, overrides: &[(String, String)]) -> String {
    // `x.tar.gz`: the last suffix says how it is encoded (Python checks
    // the exact case first, then lower case).
    if let Some(ext) = extension(name) {
        let lower = ext.to_ascii_lowercase();
        if let Some((_, t)) = ENCODED
            .iter()
            .find(|(e, _)| *e == ext)
            .or_else(|| ENCODED.iter().find(|(e, _)| *e == lower))
        {
            return (*t).to_string();
        }
        // An empty override is no override (Python's `or` falls through).
        if let Some((_, t)) = overrides.iter().find(|(e, t)| *e == lower && !t.is_empty()) {
            return with_charset(t);
        }
        if let Some((_, t)) = TYPES.iter().find(|(e, _)| *e == lower) {
            return with_charset(t);
        }
    }
    DEFAULT_TYPE.to_string()
}

/// The extension of `name` with its dot, as Python's `os.path.splitext`
/// finds it: leading dots are part of the name (`.bashrc`, `..x` have none).
fn extension(name: &str) -> Option<&str> {
    let lead = name.len() - name.trim_start_matches('.').len();
    name.rfind('.').filter(|&i| i > lead).map(|i| &name[i..])
}

fn with_charset(t: &str) -> String {
    if t.starts_with("text/") || TEXT_TYPES.contains(&t) {
        format!("{t}; charset=utf-8")
    } else {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::content_type as typed;

    fn content_type(name: &str) -> String {
        typed(name, &[])
    }

    #[test]
    fn types() {
        assert_eq!(content_type("a.txt"), "text/plain; charset=utf-8");
        assert_eq!(content_type("a.tar.gz"), "application/gzip");
        assert_eq!(content_type("a.PNG"), "image/png");
        assert_eq!(content_type("a.json"), "application/json; charset=utf-8");
        assert_eq!(content_type(".hidden"), "application/octet-stream");
        assert_eq!(content_type(".gz"), "application/octet-stream");
        assert_eq!(content_type("..txt"), "application/octet-stream");
        assert_eq!(content_type(".notes.txt"), "text/plain; charset=utf-8");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }

    #[test]
    fn overrides() {
        let types = vec![
            (".txt".to_string(), "text/x-note".to_string()),
            (".dat".to_string(), "application/x-dat".to_string()),
            (".gz".to_string(), "text/x-never".to_string()),
            (".png".to_string(), String::new()),
        ];
        // Text types get the charset, others not; case-blind extensions.
        assert_eq!(typed("a.TXT", &types), "text/x-note; charset=utf-8");
        assert_eq!(typed("a.dat", &types), "application/x-dat");
        // A compressed file keeps its format; an empty override is none.
        assert_eq!(typed("a.gz", &types), "application/gzip");
        assert_eq!(typed("a.png", &types), "image/png");
    }
}
