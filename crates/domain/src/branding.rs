//! A room's branding, as Whereby's theme API takes it: `#rrggbb` colours, PNG or
//! JPEG images (recognised by their content, never by a name or a declared type),
//! and Whereby's background presets.

/// The largest logo or background image accepted (Whereby recommends at most
/// 600 kB for backgrounds).
pub const MAX_IMAGE_BYTES: usize = 600 * 1024;

/// Background colours Whereby provides (`palette`).
pub const BACKGROUND_PALETTES: [&str; 4] = ["default", "grey", "purple", "burgund"];
/// Background images Whereby provides (`theme`).
pub const BACKGROUND_THEMES: [&str; 4] = ["default", "mountains", "characters", "rocks"];

/// `#rrggbb`, as the spec's pattern asks; `None` otherwise.
pub fn parse_color(s: &str) -> Option<String> {
    let ok = s.len() == 7 && s.starts_with('#') && s.bytes().skip(1).all(|b| b.is_ascii_hexdigit());
    ok.then(|| s.to_ascii_lowercase())
}

/// The image type of `bytes` by their first bytes: `image/png` or `image/jpeg`.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else {
        None
    }
}

/// Whether `palette`/`theme` name one of Whereby's presets.
pub fn is_background_preset(palette: &str, theme: &str) -> bool {
    BACKGROUND_PALETTES.contains(&palette) && BACKGROUND_THEMES.contains(&theme)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_images_and_presets_are_checked_by_content() {
        assert_eq!(parse_color("#A0b1C2").as_deref(), Some("#a0b1c2"));
        for bad in ["a0b1c2", "#a0b1c", "#a0b1c2d", "#g0b1c2", "", "#ééé"] {
            assert_eq!(parse_color(bad), None, "{bad}");
        }
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff_image(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff_image(b"GIF89a"), None);
        assert_eq!(sniff_image(b"<svg"), None);
        assert!(is_background_preset("grey", "mountains"));
        assert!(!is_background_preset("neon", "mountains"));
    }
}
