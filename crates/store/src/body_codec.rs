//! How a delivery's body is kept: as it came (`plain`) or compressed with
//! LZ4 (`lz4`: the block format, its decoded length first as a
//! little-endian `u32`), named in the row's `body_codec` column.
//!
//! SQLite compresses: a GitHub push of a few kilobytes shrinks to a third or
//! less, so the row fits its table page instead of spilling into overflow
//! pages, and each push committed before its `202` writes (and syncs) far
//! fewer WAL bytes. PostgreSQL stores bodies `plain` and compresses them
//! itself (the column's TOAST compression is lz4, migration 0024). Either
//! store reads both codecs, so rows copied by `tako admin migrate` keep their
//! bytes and their codec.

use std::borrow::Cow;

use crate::model::UnreadableBody;

/// The codec of a body kept as it came.
pub(crate) const PLAIN: &str = "plain";

/// The codec of an LZ4-compressed body.
pub(crate) const LZ4: &str = "lz4";

/// Bodies shorter than this are kept as they came: they fit a page anyway.
const COMPRESS_FROM: usize = 512;

/// The longest body a stored length may announce (a webhook body is at most
/// 25 MiB): a corrupt length is refused before anything is allocated.
const LONGEST_BODY: usize = 64 << 20;

/// The bytes to store for `body` and their codec: LZ4 when that is shorter.
pub(crate) fn compress(body: &[u8]) -> (Cow<'_, [u8]>, &'static str) {
    if body.len() < COMPRESS_FROM {
        return (Cow::Borrowed(body), PLAIN);
    }
    let packed = lz4_flex::block::compress_prepend_size(body);
    if packed.len() < body.len() {
        (Cow::Owned(packed), LZ4)
    } else {
        (Cow::Borrowed(body), PLAIN)
    }
}

/// The body a row keeps as `stored` under `codec`.
pub(crate) fn decode(codec: &str, stored: Vec<u8>) -> Result<Vec<u8>, UnreadableBody> {
    let unreadable = |reason: String| UnreadableBody {
        codec: codec.to_owned(),
        reason,
    };
    match codec {
        PLAIN => Ok(stored),
        LZ4 => {
            let Some(length) = stored.first_chunk::<4>().map(|l| u32::from_le_bytes(*l)) else {
                return Err(unreadable("shorter than its length".to_owned()));
            };
            let length = usize::try_from(length).unwrap_or(usize::MAX);
            if length > LONGEST_BODY {
                return Err(unreadable(format!(
                    "it announces {length} bytes, more than any webhook body"
                )));
            }
            let mut body = vec![0; length];
            let written = lz4_flex::block::decompress_into(&stored[4..], &mut body)
                .map_err(|error| unreadable(error.to_string()))?;
            if written != length {
                return Err(unreadable(format!(
                    "{written} bytes decoded, {length} announced"
                )));
            }
            Ok(body)
        }
        other => Err(unreadable(format!("unknown codec {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push_like(size: usize) -> Vec<u8> {
        let mut body = Vec::new();
        while body.len() < size {
            body.extend_from_slice(
                br#"{"id":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","message":"Update README","author":{"name":"Octocat"}},"#,
            );
        }
        body
    }

    #[test]
    fn a_push_is_compressed_and_decoded_back() {
        let body = push_like(8_000);
        let (stored, codec) = compress(&body);
        assert_eq!(codec, LZ4);
        assert!(stored.len() < body.len() / 3, "{}", stored.len());
        assert_eq!(decode(codec, stored.into_owned()).unwrap(), body);
    }

    #[test]
    fn a_short_or_incompressible_body_is_kept_as_it_came() {
        let short = b"{\"zen\":\"Keep it logically awesome.\"}".to_vec();
        assert_eq!(compress(&short), (Cow::Borrowed(short.as_slice()), PLAIN));
        // No repeats for LZ4 to find.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let noise: Vec<u8> = (0..4_096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        assert_eq!(compress(&noise).1, PLAIN);
        assert_eq!(decode(PLAIN, noise.clone()).unwrap(), noise);
    }

    #[test]
    fn a_corrupt_body_is_an_error_naming_its_codec_never_a_panic() {
        let body = push_like(8_000);
        let mut stored = compress(&body).0.into_owned();
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (LZ4, vec![1, 2], "shorter than its length"),
            (
                LZ4,
                vec![255, 255, 255, 255, 0],
                "more than any webhook body",
            ),
            (LZ4, stored[..stored.len() / 2].to_vec(), ""),
            (LZ4, [&100u32.to_le_bytes()[..], &stored[4..]].concat(), ""),
            ("zstd", stored.clone(), "unknown codec \"zstd\""),
        ];
        for (codec, bytes, says) in cases {
            let error = decode(codec, bytes).unwrap_err();
            assert_eq!(error.codec, codec);
            assert!(error.reason.contains(says), "{error}");
        }
        // Flipped bytes decode to something or fail; they never panic.
        for at in (4..stored.len()).step_by(7) {
            stored[at] ^= 0x5a;
            let _ = decode(LZ4, stored.clone());
        }
    }
}
