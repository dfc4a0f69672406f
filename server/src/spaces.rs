//! Spaces: every document lives in one, and a principal reads and writes only the spaces it has
//! access to. A space is part of a document's identity (two users writing the same collection
//! and key have two documents) and of the change feed pull reads (an index that starts with the
//! space). This module is the one place that says which spaces a principal may use
//! ([`access`]): the handlers ask it and pass its answer to the store, which knows nothing of
//! principals.
//!
//! Today's rule:
//! - A JWT user (`Principal::User(sub)`) reads and writes only a private space of its own,
//!   `user:<sub>`.
//! - The shared principals, anonymous (no authentication configured) and the development token
//!   (`--token`), use one space together, [`SHARED_SPACE`]: they never meet on one server (a
//!   server with authentication has no anonymous requests), so a database used without
//!   authentication keeps its documents when `--token` is turned on, and the reverse. Documents
//!   written before spaces existed (schema v5) were moved there too.
//!
//! Shared spaces granted by a token's claim (read or read-write) will be added here: a grant
//! adds spaces to [`Access::readable`] and [`Access::writable`], and nothing else has to learn
//! about it except how a push names the space it writes to.

use crate::auth::Principal;

/// The stored name of the space of the shared principals (anonymous and the development token).
pub const SHARED_SPACE: &str = "shared";
/// The prefix of a JWT user's private space: `user:<sub>`.
pub const USER_SPACE_PREFIX: &str = "user:";

/// A space's stored name. The prefixes keep the kinds apart: no `sub` can name the shared space
/// or a future granted one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Space(String);

impl Space {
    /// The space of the shared principals.
    pub fn shared() -> Space {
        Space(SHARED_SPACE.to_owned())
    }

    /// The private space of the JWT user `sub`.
    pub fn of_user(sub: &str) -> Space {
        Space(format!("{USER_SPACE_PREFIX}{sub}"))
    }

    /// A space by its stored name, as read back from the database or a change notification.
    pub fn from_stored(name: impl Into<String>) -> Space {
        Space(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a principal may do, and under which name its mutations are remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The principal's name in the applied and rejected ledgers: one user's op ids never answer
    /// another's. The shared principals share one name, as they share one space, so a resend
    /// after switching between them (or from before schema v5) is still a duplicate.
    pub author: String,
    /// Where a push writes (the wire has no way yet to name another space).
    pub home: Space,
    /// The spaces a pull returns and whose changes poke the principal's live sockets.
    pub readable: Vec<Space>,
    /// The spaces a push may write into.
    pub writable: Vec<Space>,
}

impl Access {
    /// Whether `space`'s changes may be shown to this principal.
    pub fn can_read(&self, space: &Space) -> bool {
        self.readable.contains(space)
    }

    /// Whether this principal may write into `space`.
    pub fn can_write(&self, space: &Space) -> bool {
        self.writable.contains(space)
    }
}

/// The spaces `principal` may read and write (see the module comment).
pub fn access(principal: &Principal) -> Access {
    let home = match principal {
        Principal::Anonymous | Principal::Development => Space::shared(),
        Principal::User(sub) => Space::of_user(sub),
    };
    Access { author: home.as_str().to_owned(), readable: vec![home.clone()], writable: vec![home.clone()], home }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_get_a_private_space_and_the_shared_principals_one_space_together() {
        let alice = access(&Principal::User("alice".into()));
        assert_eq!(alice.home, Space::of_user("alice"));
        assert!(alice.can_read(&alice.home) && alice.can_write(&alice.home));
        assert!(!alice.can_read(&Space::shared()) && !alice.can_read(&Space::of_user("bob")));
        assert_ne!(alice.author, access(&Principal::User("bob".into())).author);
        let (anonymous, development) = (access(&Principal::Anonymous), access(&Principal::Development));
        assert_eq!(anonymous, development);
        assert_eq!(anonymous.home, Space::shared());
        // The PostgreSQL migration to schema 5 writes these names as literals.
        assert_eq!((anonymous.home.as_str(), anonymous.author.as_str()), ("shared", "shared"));
        // A user called "shared" or "user:x" gets a space of its own, not the shared one.
        assert_ne!(access(&Principal::User(SHARED_SPACE.into())).home, Space::shared());
        assert_ne!(access(&Principal::User("user:x".into())).home, Space::of_user("x"));
    }
}
