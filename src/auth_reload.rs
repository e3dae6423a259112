//! What a SIGHUP may not do to authentication by accident: a reload that would switch
//! REGISTER or other requests from digest to no authentication, or that would drop every
//! user, is refused with an error naming the file, and the old tables stay. (Turning
//! authentication off is a deliberate act: change the file and restart.) An unreadable or
//! empty `users_file` never gets this far: it fails `Config::load` (see `load_users_file`).

use std::path::Path;

use sipedge_core::auth::{AuthDb, AuthMode, AuthSpec};

/// `Ok` when `new` (from `file`) may replace the tables in force, `old`.
pub(crate) fn check_reload(old: &AuthDb, new: &AuthSpec, file: &Path) -> Result<(), String> {
    let shown = file.display();
    for (key, was, now) in [
        (
            "auth.register",
            old.settings.register,
            new.settings.register,
        ),
        ("auth.invite", old.settings.invite, new.settings.invite),
    ] {
        if was == AuthMode::Digest && now == AuthMode::None {
            return Err(format!(
                "`{shown}`: {key} would change from digest to none (no users, or set to \"none\"): reload refused, authentication stays on; restart to turn it off"
            ));
        }
    }
    if old.user_count() > 0 && new.users.is_empty() {
        return Err(format!(
            "`{shown}`: the new config has no users (it had {}): reload refused, old users kept",
            old.user_count()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn db(text: &str) -> AuthDb {
        let c = Config::parse(text, "/nonexistent/t.toml").unwrap_or_else(|e| panic!("{e}"));
        AuthDb::build(&c.auth.spec).unwrap_or_else(|e| panic!("{e}"))
    }

    fn spec(text: &str) -> AuthSpec {
        Config::parse(text, "/nonexistent/t.toml")
            .unwrap_or_else(|e| panic!("{e}"))
            .auth
            .spec
    }

    const USERS: &str = "[[users]]\nusername = \"alice\"\npassword = \"pw\"\n";

    #[test]
    fn a_reload_never_turns_authentication_off() {
        let old = db(USERS);
        let file = Path::new("/etc/sipedge/sipedge.toml");
        // Every user gone: auto would become none.
        let e = check_reload(&old, &spec(""), file).expect_err("refused");
        assert!(e.contains("/etc/sipedge/sipedge.toml"), "{e}");
        assert!(e.contains("auth.register"), "{e}");
        // Explicitly none: refused too (restart for that).
        let none = format!("[auth]\nregister = \"none\"\n{USERS}");
        assert!(check_reload(&old, &spec(&none), file).is_err());
        // Digest kept but no users left: every phone would be locked out.
        let old_digest = db(&format!(
            "[auth]\nregister = \"digest\"\ninvite = \"digest\"\n{USERS}"
        ));
        let e = check_reload(
            &old_digest,
            &spec("[auth]\nregister = \"digest\"\ninvite = \"digest\"\n"),
            file,
        )
        .expect_err("refused");
        assert!(e.contains("no users"), "{e}");
        // A change of users is fine, and so is any reload of an open edge.
        let bob = "[[users]]\nusername = \"bob\"\npassword = \"pw\"\n";
        assert_eq!(check_reload(&old, &spec(bob), file), Ok(()));
        assert_eq!(check_reload(&db(""), &spec(""), file), Ok(()));
        assert_eq!(check_reload(&db(""), &spec(bob), file), Ok(()));
    }
}
