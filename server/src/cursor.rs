//! The pull cursor, opaque to clients: the last `seq` a client has pulled, and, for a pull that
//! started from the beginning, the compaction horizon it started under.
//!
//! Compaction deletes tombstones up to a horizon, so a client whose cursor is below it may have
//! missed a deletion and must start over (`410 CURSOR_EXPIRED`). But a client that *is* starting
//! over, from an empty cursor, pages through live records whose `seq`s are below the horizon
//! too: judged by its `seq` alone, every such page would expire, and a full pull with pages
//! smaller than what lies below the horizon could never finish. Such a pull missed nothing that
//! compaction removed before it began, so its cursors carry that horizon (`"{seq}.{since}"`) and
//! stay valid until compaction moves past it.

use std::fmt;

/// A position in the change sequence (see the module header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    /// Every change up to this `seq` has been pulled (0: none).
    pub seq: u64,
    /// The horizon compaction had reached when this client's pull from the beginning started
    /// (0: not needed, the `seq` alone tells).
    pub since: u64,
}

impl Cursor {
    /// The cursor at `seq`, as the live channel announces it.
    pub fn at(seq: u64) -> Cursor {
        Cursor { seq, since: 0 }
    }

    /// Reads a cursor: `""` is the beginning; otherwise `{seq}` or `{seq}.{since}`, digits only.
    pub fn parse(text: &str) -> Option<Cursor> {
        if text.is_empty() {
            return Some(Cursor::default());
        }
        let number = |part: &str| -> Option<u64> {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        match text.split_once('.') {
            None => Some(Cursor::at(number(text)?)),
            Some((seq, since)) => Some(Cursor { seq: number(seq)?, since: number(since)? }),
        }
    }

    /// Whether compaction up to `horizon` may have removed a change this cursor has not seen.
    pub fn expired(self, horizon: u64) -> bool {
        self.seq != 0 && self.seq < horizon && self.since < horizon
    }

    /// The cursor after a page that ends at `seq`, compaction being at `horizon` now.
    pub fn after(self, seq: u64, horizon: u64) -> Cursor {
        if seq == 0 {
            return Cursor::default();
        }
        let since = if self.seq == 0 { horizon } else { self.since };
        Cursor { seq, since: if seq < since { since } else { 0 } }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.since {
            0 => write!(f, "{}", self.seq),
            since => write!(f, "{}.{since}", self.seq),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_what_they_print_and_reject_anything_else() {
        assert_eq!(Cursor::parse(""), Some(Cursor::default()));
        assert_eq!(Cursor::parse("0"), Some(Cursor::default()));
        assert_eq!(Cursor::parse("18446744073709551615"), Some(Cursor::at(u64::MAX)));
        for cursor in [Cursor::at(7), Cursor { seq: 3, since: 9 }] {
            assert_eq!(Cursor::parse(&cursor.to_string()), Some(cursor));
        }
        for bad in ["-1", "+1", " 1", "1 ", "0x10", "1.", ".1", "1.2.3", "18446744073709551616", "abc", "١"] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_pull_from_the_beginning_survives_the_horizon_it_started_under_but_not_a_later_one() {
        // Compaction is at 68; live records below it have seqs 59, 61, ...
        let first = Cursor::default().after(59, 68);
        assert_eq!(first.to_string(), "59.68");
        assert!(!first.expired(68), "nothing compacted since this pull began");
        let next = first.after(61, 68);
        assert!(!next.expired(68));
        assert!(next.expired(80), "compaction moved past it: tombstones after 61 may be gone");
        assert_eq!(next.after(70, 68), Cursor::at(70), "past the horizon the seq alone tells");
        // A cursor of an incremental pull below the horizon expires, as before.
        assert!(Cursor::at(59).expired(68));
        assert!(!Cursor::at(68).expired(68));
        assert!(!Cursor::default().expired(68));
        assert_eq!(Cursor::default().after(0, 68), Cursor::default(), "an empty database: still the beginning");
    }
}
