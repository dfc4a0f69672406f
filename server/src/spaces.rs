//! Spaces: every document lives in one, and a principal reads and writes only the spaces it has
//! access to. A space is part of a document's identity (two users writing the same collection
//! and key have two documents) and of the change feed pull reads (an index that starts with the
//! space). This module is the one place that says which spaces a principal may use
//! ([`access`]): the handlers ask it and pass its answer to the store, which knows nothing of
//! principals.
//!
//! The rule:
//! - A JWT user (`Principal::User`) reads and writes a private space of its own, `user:<sub>`,
//!   plus the shared spaces its token's `spaces` claim grants (`auth::Grant`), stored as
//!   `space:<name>`: read with `"r"`, read and written with `"rw"`. A grant lasts as long as
//!   the token: a token without it (the next one the app's auth server issues) reads and writes
//!   nothing there.
//! - The shared principals, anonymous (no authentication configured) and the development token
//!   (`--token`), use one space together, [`SHARED_SPACE`]: they never meet on one server (a
//!   server with authentication has no anonymous requests), so a database used without
//!   authentication keeps its documents when `--token` is turned on, and the reverse. Documents
//!   written before spaces existed (schema v5) were moved there too.
//!
//! On the wire a shared space is named by its bare name (`Mutation::space`, `Change::space`, the
//! pull's `spaces=`), and the caller's own space by no name at all ([`Access::place`],
//! [`Access::wire_name`]).

use crate::auth::Principal;

/// The stored name of the space of the shared principals (anonymous and the development token).
pub const SHARED_SPACE: &str = "shared";
/// The prefix of a JWT user's private space: `user:<sub>`.
pub const USER_SPACE_PREFIX: &str = "user:";
/// The prefix of a shared space granted by a claim: `space:<name>`.
pub const GRANTED_SPACE_PREFIX: &str = "space:";

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

    /// The shared space a claim grants as `name`.
    pub fn granted(name: &str) -> Space {
        Space(format!("{GRANTED_SPACE_PREFIX}{name}"))
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
    /// The principal's own space: where a mutation that names no space writes.
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

    /// The space a wire name addresses: none is the own space, a name is a shared space (which
    /// the principal may or may not have been granted).
    pub fn place(&self, wire_name: Option<&str>) -> Space {
        wire_name.map_or_else(|| self.home.clone(), Space::granted)
    }

    /// How `space` is named on the wire to this principal: `None` for its own space.
    pub fn wire_name(&self, space: &Space) -> Option<String> {
        match space == &self.home {
            true => None,
            false => space.as_str().strip_prefix(GRANTED_SPACE_PREFIX).map(str::to_owned),
        }
    }
}

/// The spaces `principal` may read and write (see the module comment).
pub fn access(principal: &Principal) -> Access {
    let (home, grants) = match principal {
        Principal::Anonymous | Principal::Development => (Space::shared(), &[][..]),
        Principal::User { sub, grants } => (Space::of_user(sub), &grants[..]),
    };
    let mut access =
        Access { author: home.as_str().to_owned(), readable: vec![home.clone()], writable: vec![home.clone()], home };
    for grant in grants {
        access.readable.push(Space::granted(&grant.space));
        if grant.write {
            access.writable.push(Space::granted(&grant.space));
        }
    }
    access
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Grant;

    #[test]
    fn users_get_a_private_space_and_the_shared_principals_one_space_together() {
        let alice = access(&Principal::jwt_user("alice"));
        assert_eq!(alice.home, Space::of_user("alice"));
        assert!(alice.can_read(&alice.home) && alice.can_write(&alice.home));
        assert!(!alice.can_read(&Space::shared()) && !alice.can_read(&Space::of_user("bob")));
        assert_ne!(alice.author, access(&Principal::jwt_user("bob")).author);
        let (anonymous, development) = (access(&Principal::Anonymous), access(&Principal::Development));
        assert_eq!(anonymous, development);
        assert_eq!(anonymous.home, Space::shared());
        // The PostgreSQL migration to schema 5 writes these names as literals.
        assert_eq!((anonymous.home.as_str(), anonymous.author.as_str()), ("shared", "shared"));
        // A user called "shared" or "user:x" gets a space of its own, not the shared one.
        assert_ne!(access(&Principal::jwt_user(SHARED_SPACE)).home, Space::shared());
        assert_ne!(access(&Principal::jwt_user("user:x")).home, Space::of_user("x"));
    }

    #[test]
    fn grants_add_shared_spaces_read_or_written_by_their_bare_name() {
        let grants = vec![Grant { space: "acme".into(), write: true }, Grant { space: "news".into(), write: false }];
        let carol = access(&Principal::User { sub: "carol".into(), grants });
        let (acme, news) = (carol.place(Some("acme")), carol.place(Some("news")));
        assert_eq!((acme.as_str(), news.as_str()), ("space:acme", "space:news"));
        assert!(carol.can_read(&acme) && carol.can_write(&acme));
        assert!(carol.can_read(&news) && !carol.can_write(&news));
        assert!(!carol.can_read(&carol.place(Some("other"))));
        assert_eq!(carol.place(None), carol.home);
        assert_eq!((carol.wire_name(&carol.home), carol.wire_name(&news)), (None, Some("news".to_owned())));
        // A granted name can never address someone's private space or the shared one.
        assert_ne!(carol.place(Some("user:carol")), carol.home);
        assert!(!carol.can_read(&carol.place(Some("user:bob"))));
    }
}
