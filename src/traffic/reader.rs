//! Lines of a log file, read so that nothing is lost and nothing is counted twice: each line
//! comes with the byte offset just past it (where a later ingest resumes), a line longer than the
//! limit is skipped without being held in memory, invalid UTF-8 is an error of that line only,
//! a last line without its newline (a file still being written) is left for the next read,
//! and a UTF-8 byte order mark at the start of the text is dropped from the first line.

use std::io::{self, BufRead};

/// The UTF-8 byte order mark, which some tools write at the start of a text file.
const BOM: [u8; 3] = [0xef, 0xbb, 0xbf];

/// The first two bytes of every gzip member (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// How a file's bytes are packed, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    Plain,
    /// gzip (a rotated log, `logrotate`'s `compress`): read decompressed.
    Gzip,
    /// Another compression, not read: its name and the command that prints its text.
    Other {
        name: &'static str,
        cat: &'static str,
    },
}

/// The magic numbers of the compressions `ingest` names but does not read.
const OTHERS: [(&[u8], &str, &str); 5] = [
    (&[0x28, 0xb5, 0x2f, 0xfd], "zstd", "zstdcat"),
    (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "xz", "xzcat"),
    (b"BZh", "bzip2", "bzcat"),
    (&[0x04, 0x22, 0x4d, 0x18], "lz4", "lz4cat"),
    (b"PK\x03\x04", "zip", "unzip -p"),
];

/// How `file` is packed, by its first bytes; the file is left at its start.
pub fn packing(file: &mut std::fs::File) -> io::Result<Packing> {
    use std::io::{Read, Seek, SeekFrom};
    let mut head = [0u8; 6];
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..])? {
            0 => break,
            n => got += n,
        }
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(packing_of(&head[..got]))
}

/// How bytes that start with `head` are packed.
pub fn packing_of(head: &[u8]) -> Packing {
    if head.starts_with(&GZIP_MAGIC) {
        return Packing::Gzip;
    }
    OTHERS
        .iter()
        .find(|(magic, _, _)| head.starts_with(magic))
        .map_or(Packing::Plain, |&(_, name, cat)| Packing::Other {
            name,
            cat,
        })
}

/// The text of `inner`: decompressed when it starts as gzip does (every member of a
/// concatenated stream), else as it is.
pub fn text_of<'a, R: BufRead + 'a>(mut inner: R) -> io::Result<Box<dyn BufRead + 'a>> {
    Ok(if packing_of(inner.fill_buf()?) == Packing::Gzip {
        Box::new(io::BufReader::new(flate2::bufread::MultiGzDecoder::new(
            inner,
        )))
    } else {
        Box::new(inner)
    })
}

/// One line of the file, or why it cannot be read.
#[derive(Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// 1-based line number in the file.
    pub number: u64,
    /// Offset just past this line's newline: where reading resumes after it.
    pub end: u64,
    /// The line without its newline, in the reader's buffer until the next line is read.
    pub text: Result<&'a str, LineError>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("record of {len} bytes is over the limit of {limit} bytes; skipped")]
    TooLong { len: u64, limit: usize },
    #[error("record is not valid UTF-8 (byte {at}); skipped")]
    NotUtf8 { at: usize },
}

/// Reads lines from `offset` on. Blank lines are skipped (they count in the numbering).
pub struct LineReader<R> {
    inner: R,
    offset: u64,
    number: u64,
    limit: usize,
    /// A last line without a newline, seen at the end: not returned, not consumed.
    pending: u64,
    /// The line being read, kept from line to line (one allocation for the whole file).
    buf: Vec<u8>,
}

impl<R: BufRead> LineReader<R> {
    /// `offset` and `number`: where an earlier read stopped (0 and 0 for a new file).
    pub fn new(inner: R, offset: u64, number: u64, limit: usize) -> Self {
        Self {
            inner,
            offset,
            number,
            limit,
            pending: 0,
            buf: Vec::new(),
        }
    }

    /// The offset up to which every line has been returned.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The number of the last line returned (or skipped as blank).
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Bytes of an unfinished last line left for the next read (0 when the file ended with a
    /// newline).
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// The next complete line, `None` at the end (see [`Self::pending`]).
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        // The loop only fills the buffer; the line borrowing it is made after (a borrow
        // returned from inside the loop would hold the buffer for every turn of it).
        let too_long = loop {
            let buf = &mut self.buf;
            buf.clear();
            let mut len: u64 = 0;
            let mut newline = false;
            loop {
                let chunk = self.inner.fill_buf()?;
                if chunk.is_empty() {
                    break;
                }
                let (take, found) = match chunk.iter().position(|&b| b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (chunk.len(), false),
                };
                let room = (self.limit + 1).saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..take.min(room)]);
                len += take as u64;
                self.inner.consume(take);
                if found {
                    newline = true;
                    break;
                }
            }
            if !newline {
                // End of file: an unfinished line stays for later, whole.
                self.pending = len;
                return Ok(None);
            }
            let start = self.offset;
            self.offset += len;
            self.number += 1;
            let content_len = len - 1;
            if content_len > self.limit as u64 {
                break Some(content_len);
            }
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            // A byte order mark opening the text (as Windows tools write) is not part of the
            // first record; offsets still count it, so a resumed read starts past it.
            if start == 0 && buf.starts_with(&BOM) {
                buf.drain(..BOM.len());
            }
            if !buf.iter().all(u8::is_ascii_whitespace) {
                break None;
            }
        };
        let text = match too_long {
            Some(len) => Err(LineError::TooLong {
                len,
                limit: self.limit,
            }),
            None => std::str::from_utf8(&self.buf).map_err(|e| LineError::NotUtf8 {
                at: e.valid_up_to(),
            }),
        };
        Ok(Some(Line {
            number: self.number,
            end: self.offset,
            text,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor, Seek, SeekFrom};

    /// A line as read, owned: (number, end, text).
    type Owned = (u64, u64, Result<String, LineError>);

    fn owned(l: Line<'_>) -> Owned {
        (l.number, l.end, l.text.map(str::to_owned))
    }

    fn all(bytes: &[u8], limit: usize) -> (Vec<Owned>, u64, u64) {
        // A tiny buffer, so that lines span many reads.
        let mut r = LineReader::new(BufReader::with_capacity(4, Cursor::new(bytes)), 0, 0, limit);
        let mut lines = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            lines.push(owned(l));
        }
        (lines, r.offset(), r.pending())
    }

    #[test]
    fn lines_carry_their_number_and_resume_offset() {
        let (lines, offset, pending) = all(b"{\"a\":1}\n\n{\"b\":2}\r\n", 100);
        assert_eq!(
            lines,
            [
                (1, 8, Ok("{\"a\":1}".to_owned())),
                (3, 18, Ok("{\"b\":2}".to_owned()))
            ]
        );
        assert_eq!((offset, pending), (18, 0));
    }

    #[test]
    fn an_unfinished_last_line_waits_and_is_read_whole_later() {
        let mut file = b"one\ntw".to_vec();
        let (lines, offset, pending) = all(&file, 100);
        assert_eq!(lines.len(), 1);
        assert_eq!((offset, pending), (4, 2));
        // The writer finishes the line; a new read from the offset sees it once, whole.
        file.extend_from_slice(b"o\nthree\n");
        let mut cur = Cursor::new(file);
        cur.seek(SeekFrom::Start(offset)).unwrap();
        let mut r = LineReader::new(BufReader::new(cur), offset, 1, 100);
        let a = owned(r.next_line().unwrap().unwrap());
        assert_eq!((a.0, a.2), (2, Ok("two".to_owned())));
        let b = owned(r.next_line().unwrap().unwrap());
        assert_eq!(b, (3, 14, Ok("three".to_owned())));
        assert!(r.next_line().unwrap().is_none());
    }

    #[test]
    fn a_bom_at_the_start_is_not_part_of_the_first_line_and_offsets_stay_bytes() {
        let bytes = b"\xef\xbb\xbf{\"a\":1}\n{\"b\":2}\n";
        let (lines, offset, _) = all(bytes, 100);
        assert_eq!(
            lines,
            [
                (1, 11, Ok("{\"a\":1}".to_owned())),
                (2, 19, Ok("{\"b\":2}".to_owned()))
            ]
        );
        assert_eq!(offset, 19);
        // Resumed after the first line, the second is read once, as it is.
        let mut cur = Cursor::new(bytes.to_vec());
        cur.seek(SeekFrom::Start(11)).unwrap();
        let mut r = LineReader::new(BufReader::new(cur), 11, 1, 100);
        let b = owned(r.next_line().unwrap().unwrap());
        assert_eq!(b, (2, 19, Ok("{\"b\":2}".to_owned())));
        assert!(r.next_line().unwrap().is_none());
        // Only at the start: a BOM further on is the line's text; a BOM alone is a blank line.
        let (lines, _, _) = all(b"\xef\xbb\xbf\n\xef\xbb\xbfx\n", 100);
        assert_eq!(lines, [(2, 9, Ok("\u{feff}x".to_owned()))]);
    }

    #[test]
    fn long_and_invalid_lines_are_errors_of_their_own_line_only() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"ok\n");
        bytes.extend(std::iter::repeat_n(b'x', 10_000));
        bytes.extend_from_slice(b"\nbad \xff byte\nfine\n");
        let (lines, offset, _) = all(&bytes, 64);
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[1].2,
            Err(LineError::TooLong {
                len: 10_000,
                limit: 64
            })
        );
        assert_eq!(lines[2].2, Err(LineError::NotUtf8 { at: 4 }));
        assert_eq!((lines[3].0, lines[3].2.clone()), (4, Ok("fine".to_owned())));
        assert_eq!(offset, bytes.len() as u64);
        assert_eq!(
            lines[1].2.clone().unwrap_err().to_string(),
            "record of 10000 bytes is over the limit of 64 bytes; skipped"
        );
    }
}
