//! The digests resetd compares content by (config files, hash lists): one
//! format, `sha256:<hex>`, from one place.

use sha2::{Digest, Sha256};

/// Lowercase hex sha256, prefixed with the algorithm so a future change of
/// algorithm cannot be mistaken for a content change.
pub fn hex_digest(bytes: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(bytes);
    finish_digest(hasher)
}

/// `sha256:<hex>` of what was fed to `hasher`.
pub fn finish_digest(hasher: Sha256) -> String {
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in hasher.finalize() {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}
