//! Stickers of offline token books: survey tokens the server never stores. A sticker's token
//! carries its book number and serial with a MAC over (book number, serial, unit) under the
//! server secret, in the 26 base32 characters of any survey token (so the sticker's URL is the
//! same short QR as a dossier's). The server recognises a sticker it never saw by the
//! signature alone, and the unit is bound inside it: the same serial and MAC cannot be made to
//! speak for another unit's book.

use data_encoding::BASE32_NOPAD;

use super::token::SurveyToken;
use crate::secret::ServerSecret;

/// A sticker's place: which book, which serial in it (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StickerRef {
    pub book_number: u32,
    pub serial: u32,
}

fn mac(secret: &ServerSecret, sticker: StickerRef, unit_id: &str) -> [u8; 8] {
    let full = secret.mac(
        "book-sticker",
        &format!("{}:{}:{unit_id}", sticker.book_number, sticker.serial),
    );
    let mut out = [0u8; 8];
    out.copy_from_slice(&full[..8]);
    out
}

impl StickerRef {
    /// The token printed on the sticker of a book of `unit_id`.
    pub fn token(self, secret: &ServerSecret, unit_id: &str) -> SurveyToken {
        let mut bytes = [0u8; 16];
        bytes[..4].copy_from_slice(&self.book_number.to_be_bytes());
        bytes[4..8].copy_from_slice(&self.serial.to_be_bytes());
        bytes[8..].copy_from_slice(&mac(secret, self, unit_id));
        // 16 bytes are always 26 base32 characters: a valid token.
        SurveyToken::parse(&BASE32_NOPAD.encode(&bytes))
            .unwrap_or_else(|| unreachable!("16 bytes encode to a survey token"))
    }

    /// The book number and serial a token claims, with its MAC; `None` if it cannot be a
    /// sticker at all. The claim means nothing until [`StickerRef::verify`] accepts it.
    pub fn claimed(token: &SurveyToken) -> Option<(Self, [u8; 8])> {
        let bytes = BASE32_NOPAD.decode(token.as_str().as_bytes()).ok()?;
        if bytes.len() != 16 {
            return None;
        }
        let number = u32::from_be_bytes(bytes[..4].try_into().ok()?);
        let serial = u32::from_be_bytes(bytes[4..8].try_into().ok()?);
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&bytes[8..]);
        (number > 0 && serial > 0).then_some((
            Self {
                book_number: number,
                serial,
            },
            tag,
        ))
    }

    /// Whether `tag` is this sticker's signature for a book of `unit_id` (compared in
    /// constant time).
    pub fn verify(self, secret: &ServerSecret, unit_id: &str, tag: &[u8; 8]) -> bool {
        let expected = mac(secret, self, unit_id);
        expected
            .iter()
            .zip(tag)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    /// The serial printed on the sticker, e.g. `S12-0042` (book 12, sticker 42).
    pub fn label(self) -> String {
        format!("S{}-{:04}", self.book_number, self.serial)
    }

    /// Reads a printed serial as staff type it (`S12-0042`, `s12-42`, `12-42`).
    pub fn parse_label(text: &str) -> Option<Self> {
        let text = text.trim();
        let text = text
            .strip_prefix('S')
            .or_else(|| text.strip_prefix('s'))
            .unwrap_or(text);
        let (book, serial) = text.split_once('-')?;
        let book_number: u32 = book.trim().parse().ok()?;
        let serial: u32 = serial.trim().parse().ok()?;
        (book_number > 0 && serial > 0).then_some(Self {
            book_number,
            serial,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> ServerSecret {
        ServerSecret::from_bytes(b"0123456789abcdef0123456789abcdef".to_vec())
    }

    #[test]
    fn a_sticker_token_round_trips_and_binds_its_unit() {
        let s = StickerRef {
            book_number: 12,
            serial: 42,
        };
        let token = s.token(&secret(), "unit-a");
        assert_eq!(token.as_str().len(), super::super::token::TOKEN_LEN);
        let (claimed, tag) = StickerRef::claimed(&token).unwrap();
        assert_eq!(claimed, s);
        assert!(claimed.verify(&secret(), "unit-a", &tag));
        assert!(!claimed.verify(&secret(), "unit-b", &tag), "another unit");
        let other = StickerRef {
            book_number: 13,
            serial: 42,
        };
        assert!(!other.verify(&secret(), "unit-a", &tag), "another book");
        let other_secret = ServerSecret::from_bytes(b"another secret of enough length!".to_vec());
        assert!(!claimed.verify(&other_secret, "unit-a", &tag));
    }

    #[test]
    fn printed_serials_are_read_loosely() {
        let s = StickerRef {
            book_number: 12,
            serial: 42,
        };
        assert_eq!(s.label(), "S12-0042");
        for typed in ["S12-0042", " s12-42 ", "12-42"] {
            assert_eq!(StickerRef::parse_label(typed), Some(s), "{typed}");
        }
        for bad in ["", "S12", "S0-1", "S1-0", "Sx-1", "S1-2-3"] {
            assert_eq!(StickerRef::parse_label(bad), None, "{bad}");
        }
    }
}
