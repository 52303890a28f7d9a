//! Content types guessed from file extensions (enough for a UI and for text/binary hints).

pub(crate) fn guess(path: &str) -> Option<String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let (_, ext) = name.rsplit_once('.')?;
    let ct = match ext.to_ascii_lowercase().as_str() {
        "txt" | "log" | "out" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" | "mjs" => "text/javascript",
        "xml" => "application/xml",
        "json" => "application/json",
        "yaml" | "yml" => "application/yaml",
        "toml" => "application/toml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "wasm" => "application/wasm",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "har" => "application/json",
        "bin" => "application/octet-stream",
        _ => return None,
    };
    Some(ct.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_by_extension() {
        assert_eq!(
            guess("reports/junit.XML").as_deref(),
            Some("application/xml")
        );
        assert_eq!(guess("a.b/c.png").as_deref(), Some("image/png"));
        assert_eq!(guess("a.b/noext"), None);
        assert_eq!(guess("x.unknown"), None);
    }
}
