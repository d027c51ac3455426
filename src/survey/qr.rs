//! QR codes of survey links, as SVG for screens and PNG for receipt printers.

use anyhow::Context;
use qrcode::{EcLevel, QrCode};

/// The text put in the QR code. When the base URL has no path, the whole URL is upper-cased
/// (scheme and host are case-insensitive, and `/S/` is routed like `/s/`), which lets the
/// encoder use alphanumeric mode: a smaller code that cheap phone cameras read more easily.
pub fn qr_text(public_base: &str, survey_url: &str) -> String {
    let base_has_path = public_base
        .split_once("://")
        .map(|(_, rest)| rest.contains('/'))
        .unwrap_or(true);
    let upper = survey_url.to_ascii_uppercase();
    let alphanumeric = upper
        .chars()
        .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || " $%*+-./:".contains(c));
    if !base_has_path && alphanumeric {
        upper
    } else {
        survey_url.to_string()
    }
}

/// Level Q survives a smudged or partly torn receipt (25 % of the code may be lost).
fn encode(text: &str) -> anyhow::Result<QrCode> {
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::Q)
        .context("text too long for a QR code")
}

pub fn svg(text: &str) -> anyhow::Result<String> {
    let code = encode(text)?;
    Ok(code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

/// A black-and-white PNG, `scale` pixels per module, with the standard 4-module quiet zone.
pub fn png(text: &str, scale: u32) -> anyhow::Result<Vec<u8>> {
    let code = encode(text)?;
    let modules = code.width() as u32;
    let quiet = 4;
    let side = (modules + 2 * quiet) * scale;
    let colors = code.to_colors();
    let mut pixels = vec![255u8; (side * side) as usize];
    for (i, color) in colors.iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (mx, my) = (i as u32 % modules + quiet, i as u32 / modules + quiet);
            for y in my * scale..(my + 1) * scale {
                let row = (y * side) as usize;
                pixels[row + (mx * scale) as usize..row + ((mx + 1) * scale) as usize].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_cases_only_when_the_base_has_no_path() {
        assert_eq!(
            qr_text("http://127.0.0.1:8080", "http://127.0.0.1:8080/s/ABC"),
            "HTTP://127.0.0.1:8080/S/ABC"
        );
        assert_eq!(
            qr_text("https://x.vn/sipas", "https://x.vn/sipas/s/ABC"),
            "https://x.vn/sipas/s/ABC"
        );
        assert_eq!(
            qr_text("https://x_y.vn", "https://x_y.vn/s/ABC"),
            "https://x_y.vn/s/ABC"
        );
    }

    #[test]
    fn png_is_a_square_image() {
        let bytes = png("HTTP://EXAMPLE.VN/S/ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert_eq!(info.width, info.height);
        assert!(info.width >= 25 * 4);
    }

    #[test]
    fn svg_is_an_svg() {
        assert!(svg("HTTP://EXAMPLE.VN/S/X").unwrap().contains("<svg"));
    }
}
