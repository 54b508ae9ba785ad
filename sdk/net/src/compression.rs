//! Request and response body compression (gzip, zstd, deflate), with a cap on the size a body
//! may expand to so that a small compressed request cannot exhaust memory.

use std::io::Read;

use serde::{Deserialize, Serialize};

/// A content encoding.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// No compression.
    #[default]
    #[serde(alias = "")]
    None,
    /// gzip.
    Gzip,
    /// Zstandard.
    Zstd,
    /// deflate (zlib-wrapped, as HTTP's `deflate` is).
    #[serde(alias = "zlib")]
    Deflate,
}

/// A body that could not be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    /// It expands to more than the limit.
    #[error("the decompressed body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// It is not valid data for its encoding.
    #[error("the body is not valid {encoding}: {source}")]
    Invalid {
        /// The encoding.
        encoding: &'static str,
        /// The decoder's error.
        source: std::io::Error,
    },
}

impl Compression {
    /// From an HTTP `Content-Encoding` value; `None` if it is not one this knows.
    pub fn from_header(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Some(Compression::None),
            "gzip" | "x-gzip" => Some(Compression::Gzip),
            "zstd" => Some(Compression::Zstd),
            "deflate" => Some(Compression::Deflate),
            _ => None,
        }
    }

    /// The `Content-Encoding` value, or `None` for no compression.
    pub fn header_value(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("gzip"),
            Compression::Zstd => Some("zstd"),
            Compression::Deflate => Some("deflate"),
        }
    }

    /// Decompresses `body`, failing if the result would exceed `limit` bytes.
    pub fn decompress(
        self,
        body: bytes::Bytes,
        limit: usize,
    ) -> Result<bytes::Bytes, DecompressError> {
        let reader: Box<dyn Read + '_> = match self {
            Compression::None => {
                return if body.len() > limit {
                    Err(DecompressError::TooLarge { limit })
                } else {
                    Ok(body)
                };
            }
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&body[..])),
            Compression::Deflate => Box::new(flate2::read::ZlibDecoder::new(&body[..])),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(&body[..]).map_err(
                |source| DecompressError::Invalid {
                    encoding: "zstd",
                    source,
                },
            )?),
        };
        let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
        reader
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|source| DecompressError::Invalid {
                encoding: self.name(),
                source,
            })?;
        if out.len() > limit {
            return Err(DecompressError::TooLarge { limit });
        }
        Ok(out.into())
    }

    /// Compresses `body`.
    pub fn compress(self, body: &[u8]) -> std::io::Result<Vec<u8>> {
        use std::io::Write;
        match self {
            Compression::None => Ok(body.to_vec()),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(body)?;
                e.finish()
            }
            Compression::Deflate => {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(body)?;
                e.finish()
            }
            Compression::Zstd => zstd::stream::encode_all(body, 1),
        }
    }

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Deflate => "deflate",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_encoding() {
        let data = b"hello hello hello hello".repeat(100);
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Zstd,
            Compression::Deflate,
        ] {
            let packed = c.compress(&data).unwrap();
            let out = c.decompress(packed.into(), 1 << 20).unwrap();
            assert_eq!(&out[..], &data[..], "{c:?}");
        }
    }

    #[test]
    fn refuses_bodies_that_expand_past_the_limit() {
        // A bomb is built at the best level; the collector's own level is `fast`.
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut e, &vec![0u8; 10 << 20]).unwrap();
        let bomb = e.finish().unwrap();
        assert!(bomb.len() < 100_000, "{}", bomb.len());
        let err = Compression::Gzip
            .decompress(bomb.into(), 1 << 20)
            .unwrap_err();
        assert!(matches!(err, DecompressError::TooLarge { limit } if limit == 1 << 20));
    }

    #[test]
    fn reports_corrupt_bodies() {
        let err = Compression::Zstd
            .decompress(bytes::Bytes::from_static(b"not zstd"), 100)
            .unwrap_err();
        assert!(err.to_string().contains("not valid zstd"), "{err}");
    }
}
