//! QR codes of survey links, as SVG for screens and PNG for receipt printers.
//!
//! The `qrcode` crate builds the code (segments, error correction, placement) but its mask
//! selection copies and masks the whole canvas eight times and scores each copy with a boxed
//! closure per module, which made a survey-link code cost ~0.9 ms. [`Matrix::encode`] keeps the
//! crate's pipeline up to the placed data and replaces the mask selection: each mask's modules
//! are a per-version template (built once, by the crate) XOR the data, a row per machine word,
//! scored with the crate's exact penalty rules and tie-break, so the chosen mask (and so every
//! module) is the same as `QrCode` would give. The SVG is one path of horizontal runs, a fraction
//! of the size of a rectangle per module.

use std::fmt::Write;
use std::sync::OnceLock;

use anyhow::Context;
use qrcode::EcLevel;
use qrcode::Version;
use qrcode::canvas::{Canvas, MaskPattern, Module};
use qrcode::types::Color;

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

/// The masks in the order `qrcode` tries them: on equal penalties the first one wins there too.
const MASKS: [MaskPattern; 8] = [
    MaskPattern::Checkerboard,
    MaskPattern::HorizontalLines,
    MaskPattern::VerticalLines,
    MaskPattern::DiagonalLines,
    MaskPattern::LargeCheckerboard,
    MaskPattern::Fields,
    MaskPattern::Diamonds,
    MaskPattern::Meadow,
];

/// Modules of the quiet zone around the code, as the standard asks.
const QUIET: usize = 4;

/// A finished QR code: `width` × `width` modules, row by row, `true` for dark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    width: usize,
    dark: Vec<bool>,
}

impl Matrix {
    /// Level Q survives a smudged or partly torn receipt (25 % of the code may be lost).
    pub fn encode(text: &str) -> anyhow::Result<Self> {
        let bits = qrcode::bits::encode_auto(text.as_bytes(), LEVEL)
            .context("text too long for a QR code")?;
        let version = bits.version();
        let data = bits.into_bytes();
        let (data, ec) = qrcode::ec::construct_codewords(&data, version, LEVEL)
            .context("QR error correction")?;
        let mut canvas = Canvas::new(version, LEVEL);
        canvas.draw_all_functional_patterns();
        canvas.draw_data(&data, &ec);
        let width = version.width().unsigned_abs() as usize;
        match masked_templates(version) {
            Some(templates) => Ok(Self::best_by_words(&canvas, width, templates)),
            None => Self::best_by_canvas(&canvas, width),
        }
    }

    /// Mask choice for codes up to 64 modules wide: each mask's modules are its template row
    /// XOR the dark data modules, eight word-wide passes instead of eight canvas copies.
    fn best_by_words(canvas: &Canvas, width: usize, templates: &MaskedTemplates) -> Self {
        let mut data = [0u64; 64];
        for (y, row) in data.iter_mut().enumerate().take(width) {
            for x in 0..width {
                // Coordinates are below 64 here, so they fit the canvas's i16.
                if canvas.get(x as i16, y as i16) == Module::Unmasked(Color::Dark) {
                    *row |= 1 << x;
                }
            }
        }
        let mut best = [0u64; 64];
        let mut lowest = u32::MAX;
        for template in templates {
            let mut rows = [0u64; 64];
            for ((row, template), data) in rows.iter_mut().zip(template).zip(&data).take(width) {
                *row = template ^ data;
            }
            let score = penalty_of_rows(&rows[..width]);
            if score < lowest {
                lowest = score;
                best = rows;
            }
        }
        let dark = best[..width]
            .iter()
            .flat_map(|row| (0..width).map(move |x| row >> x & 1 == 1))
            .collect();
        Self { width, dark }
    }

    /// Mask choice for wider codes (never a survey link): the crate's canvas, masked eight times.
    fn best_by_canvas(canvas: &Canvas, width: usize) -> anyhow::Result<Self> {
        let mut best: Option<(u32, Matrix)> = None;
        for mask in MASKS {
            let mut masked = canvas.clone();
            masked.apply_mask(mask);
            let dark: Vec<bool> = masked
                .into_colors()
                .into_iter()
                .map(|c| c == Color::Dark)
                .collect();
            let candidate = Matrix { width, dark };
            let score = candidate
                .penalty_by_words()
                .unwrap_or_else(|| candidate.penalty());
            if best.as_ref().is_none_or(|(lowest, _)| score < *lowest) {
                best = Some((score, candidate));
            }
        }
        best.map(|(_, m)| m).context("no QR mask")
    }

    pub fn width(&self) -> usize {
        self.width
    }

    fn at(&self, x: usize, y: usize) -> bool {
        self.dark[y * self.width + x]
    }

    /// [`Self::penalty`] computed 64 modules at a time, for codes up to 64 modules wide
    /// (version 11, far above a survey link's 3 to 5); `None` for wider codes.
    fn penalty_by_words(&self) -> Option<u32> {
        let n = self.width;
        if !(7..=64).contains(&n) {
            return None;
        }
        let mut rows = [0u64; 64];
        for (y, row) in self.dark.chunks_exact(n).enumerate() {
            for (x, dark) in row.iter().enumerate() {
                rows[y] |= u64::from(*dark) << x;
            }
        }
        Some(penalty_of_rows(&rows[..n]))
    }

    /// The `qrcode` crate's penalty (ISO 18004 rules N1–N4 as that crate computes them, without
    /// its constant offset for the finder patterns, which does not change which mask wins).
    fn penalty(&self) -> u32 {
        let n = self.width;
        let mut columns = vec![false; n * n];
        for (y, row) in self.dark.chunks_exact(n).enumerate() {
            for (x, dark) in row.iter().enumerate() {
                columns[x * n + y] = *dark;
            }
        }
        let mut score = 0;
        for line in self.dark.chunks_exact(n).chain(columns.chunks_exact(n)) {
            score += runs_penalty(line) + finder_penalty(line);
        }
        for pair in self.dark.windows(2 * n).step_by(n) {
            let (top, bottom) = pair.split_at(n);
            for x in 0..n - 1 {
                let c = top[x];
                if c == top[x + 1] && c == bottom[x] && c == bottom[x + 1] {
                    score += 3;
                }
            }
        }
        let dark = self.dark.iter().filter(|d| **d).count();
        let ratio = dark * 200 / self.dark.len();
        score + ratio.abs_diff(100) as u32
    }
}

/// The error correction level of every code: Q survives a smudged or partly torn receipt.
const LEVEL: EcLevel = EcLevel::Q;

/// For one version, each mask's modules on a code without data: the function patterns with that
/// mask's format information, and the mask itself wherever data goes (the crate masks an empty
/// module as a light one). A code's modules under a mask are its template XOR its dark data.
type MaskedTemplates = [[u64; 64]; 8];

/// The templates of versions up to 11 (64 modules), built once each with the crate's own canvas
/// so that they match it exactly; `None` for wider codes.
fn masked_templates(version: Version) -> Option<&'static MaskedTemplates> {
    static CACHE: [OnceLock<MaskedTemplates>; 11] = [const { OnceLock::new() }; 11];
    let Version::Normal(number) = version else {
        return None;
    };
    let slot = CACHE.get(usize::try_from(number).ok()?.checked_sub(1)?)?;
    Some(slot.get_or_init(|| {
        let width = version.width().unsigned_abs() as usize;
        let mut functional = Canvas::new(version, LEVEL);
        functional.draw_all_functional_patterns();
        let mut templates = [[0u64; 64]; 8];
        for (rows, mask) in templates.iter_mut().zip(MASKS) {
            let mut masked = functional.clone();
            masked.apply_mask(mask);
            for (i, color) in masked.into_colors().into_iter().enumerate() {
                if color == Color::Dark {
                    rows[i / width] |= 1 << (i % width);
                }
            }
        }
        templates
    }))
}

/// The penalty of a code given as one word per row (bit x = module x, dark = 1), at most 64
/// modules wide; equal to [`Matrix::penalty`].
fn penalty_of_rows(rows: &[u64]) -> u32 {
    let n = rows.len();
    let inside = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
    let mut columns = [0u64; 64];
    for (y, row) in rows.iter().enumerate() {
        let mut bits = *row;
        while bits != 0 {
            let x = bits.trailing_zeros() as usize;
            columns[x] |= 1 << y;
            bits &= bits - 1;
        }
    }
    let columns = &columns[..n];
    // Bit j of a line is module j; `same` marks j where modules j and j+1 match.
    let pairs = inside >> 1;
    let finder_starts = inside >> 6;
    let mut score = 0;
    for &line in rows.iter().chain(columns) {
        // N1: a run of L ≥ 5 is L-1 ≥ 4 matching neighbours; with `four` marking the starts of
        // four matches in a row, L-2 = (ones of `four` in the run) + 2.
        let same = !(line ^ (line >> 1)) & pairs;
        let four = same & (same >> 1) & (same >> 2) & (same >> 3);
        score += four.count_ones() + 2 * (four & !(four << 1)).count_ones();
        // N3: dark-light-dark-dark-dark-light-dark, outside the code counting as light.
        let found = line
            & !(line >> 1)
            & (line >> 2)
            & (line >> 3)
            & (line >> 4)
            & !(line >> 5)
            & (line >> 6)
            & finder_starts;
        let dark_before = (line << 1) | (line << 2) | (line << 3) | (line << 4);
        let dark_after = (line >> 7) | (line >> 8) | (line >> 9) | (line >> 10);
        score += 40 * (found & !(dark_before & dark_after)).count_ones();
    }
    // N2: 2×2 blocks of one colour.
    for pair in rows.windows(2) {
        let (top, bottom) = (pair[0], pair[1]);
        let vertical = !(top ^ bottom);
        let horizontal = !(top ^ (top >> 1));
        score += 3 * (vertical & (vertical >> 1) & horizontal & pairs).count_ones();
    }
    let dark: u32 = rows.iter().map(|r| r.count_ones()).sum();
    let ratio = dark as usize * 200 / (n * n);
    score + ratio.abs_diff(100) as u32
}

/// N1: each run of five or more same-coloured modules in a line costs its length minus two.
fn runs_penalty(line: &[bool]) -> u32 {
    let mut score = 0;
    let mut run = 1u32;
    for pair in line.windows(2) {
        if pair[0] == pair[1] {
            run += 1;
        } else {
            if run >= 5 {
                score += run - 2;
            }
            run = 1;
        }
    }
    if run >= 5 {
        score += run - 2;
    }
    score
}

/// N3: a dark-light-dark×3-light-dark pattern not bordered by four light modules on both sides
/// costs 40 (outside the code counts as light).
fn finder_penalty(line: &[bool]) -> u32 {
    const PATTERN: [bool; 7] = [true, false, true, true, true, false, true];
    let n = line.len();
    let mut score = 0;
    for j in 0..n.saturating_sub(6) {
        if line[j..j + 7] != PATTERN {
            continue;
        }
        let dark_before = line[j.saturating_sub(4)..j].contains(&true);
        let dark_after = line[j + 7..(j + 11).min(n)].contains(&true);
        if !dark_before || !dark_after {
            score += 40;
        }
    }
    score
}

/// The smallest whole number of pixels per module that makes the image at least 240 px wide,
/// large enough to scan from a counter screen.
fn svg_scale(side: usize) -> usize {
    240usize.div_ceil(side).max(1)
}

/// Appends a module coordinate (below 1,000: a code is at most 185 modules wide with its quiet
/// zone); `write!` costs a third of the rendering time here.
fn push_number(out: &mut String, n: usize) {
    if n >= 100 {
        out.push(char::from(b'0' + (n / 100 % 10) as u8));
    }
    if n >= 10 {
        out.push(char::from(b'0' + (n / 10 % 10) as u8));
    }
    out.push(char::from(b'0' + (n % 10) as u8));
}

/// An SVG image: the modules as one path of horizontal runs, with the 4-module quiet zone.
pub fn svg(text: &str) -> anyhow::Result<String> {
    Ok(Matrix::encode(text)?.svg())
}

impl Matrix {
    pub fn svg(&self) -> String {
        let side = self.width + 2 * QUIET;
        let pixels = side * svg_scale(side);
        let mut out = String::with_capacity(256 + self.width * self.width * 3);
        let _ = write!(
            out,
            "<?xml version=\"1.0\" standalone=\"yes\"?>\
             <svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{pixels}\" \
             height=\"{pixels}\" viewBox=\"0 0 {side} {side}\" shape-rendering=\"crispEdges\">\
             <rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/><path fill=\"#000\" d=\""
        );
        for y in 0..self.width {
            let mut x = 0;
            while x < self.width {
                if !self.at(x, y) {
                    x += 1;
                    continue;
                }
                let start = x;
                while x < self.width && self.at(x, y) {
                    x += 1;
                }
                let run = x - start;
                out.push('M');
                push_number(&mut out, start + QUIET);
                out.push(' ');
                push_number(&mut out, y + QUIET);
                out.push('h');
                push_number(&mut out, run);
                out.push_str("v1h-");
                push_number(&mut out, run);
                out.push('z');
            }
        }
        out.push_str("\"/></svg>");
        out
    }

    /// A black-and-white PNG, `scale` pixels per module, with the 4-module quiet zone.
    pub fn png(&self, scale: u32) -> anyhow::Result<Vec<u8>> {
        let scale = scale.max(1) as usize;
        let side = (self.width + 2 * QUIET) * scale;
        let mut pixels = vec![255u8; side * side];
        for y in 0..self.width {
            for x in 0..self.width {
                if self.at(x, y) {
                    let left = (x + QUIET) * scale;
                    for py in (y + QUIET) * scale..(y + QUIET + 1) * scale {
                        pixels[py * side + left..py * side + left + scale].fill(0);
                    }
                }
            }
        }
        let side = u32::try_from(side).context("QR image too large")?;
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
}

/// A black-and-white PNG, `scale` pixels per module, with the standard 4-module quiet zone.
pub fn png(text: &str, scale: u32) -> anyhow::Result<Vec<u8>> {
    Matrix::encode(text)?.png(scale)
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

    /// Texts of every kind and length a survey link can take, from 1-character to version 10+.
    fn sample_texts() -> Vec<String> {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let mut texts = vec![
            "A".to_string(),
            "1".into(),
            "https://x.vn/sipas/s/abc".into(),
        ];
        for i in 0..300 {
            let len = 1 + (next() % 26) as usize + (i % 7) * 20;
            let token: String = (0..len)
                .map(|_| alphabet[(next() % 32) as usize] as char)
                .collect();
            texts.push(match i % 3 {
                0 => format!("HTTP://127.0.0.1:8080/S/{token}"),
                1 => format!("https://dichvucong.example.gov.vn/sipas/s/{token}?lang=en"),
                _ => token,
            });
        }
        // Wider than 64 modules: the slice-by-slice penalty.
        for len in [300, 450, 700] {
            texts.push(format!("https://x.vn/s/{}", "a1-".repeat(len / 3)));
        }
        texts
    }

    #[test]
    fn both_penalty_computations_agree() {
        for text in sample_texts() {
            let m = Matrix::encode(&text).unwrap();
            if let Some(fast) = m.penalty_by_words() {
                assert_eq!(fast, m.penalty(), "{text}");
            }
        }
    }

    #[test]
    fn modules_are_exactly_those_of_the_qrcode_crate() {
        for text in sample_texts() {
            let ours = Matrix::encode(&text).unwrap();
            let theirs =
                qrcode::QrCode::with_error_correction_level(text.as_bytes(), EcLevel::Q).unwrap();
            assert_eq!(ours.width, theirs.width(), "{text}");
            let dark: Vec<bool> = theirs
                .to_colors()
                .iter()
                .map(|c| *c == Color::Dark)
                .collect();
            assert!(ours.dark == dark, "modules differ for {text}");
        }
    }

    #[test]
    fn png_decodes_back_to_the_text() {
        let text = "HTTP://EXAMPLE.VN/S/ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let bytes = png(text, 4).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let (width, height) = (reader.info().width, reader.info().height);
        assert_eq!(width, height);
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        let image =
            rqrr::PreparedImage::prepare_from_greyscale(width as usize, height as usize, |x, y| {
                buf[y * width as usize + x]
            });
        let mut image = image;
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, text);
    }

    #[test]
    fn svg_draws_every_dark_module_once() {
        let m = Matrix::encode("HTTP://EXAMPLE.VN/S/X").unwrap();
        let svg = m.svg();
        assert!(svg.starts_with("<?xml") && svg.ends_with("</svg>"));
        let path = svg.split(" d=\"").nth(1).unwrap();
        let painted: usize = path
            .split('h')
            .skip(1)
            .step_by(2)
            .filter_map(|s| s.split('v').next()?.parse::<usize>().ok())
            .sum();
        assert_eq!(painted, m.dark.iter().filter(|d| **d).count());
        assert!(svg.contains("width=\"264\""), "{}", &svg[..200]);
    }

    #[test]
    fn too_long_text_is_an_error() {
        assert!(svg(&"A".repeat(5000)).is_err());
    }
}
