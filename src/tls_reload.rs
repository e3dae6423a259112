//! `[tls]` on SIGHUP: the new certificate and key (and CAs, version, verification) are used
//! by connections accepted or opened after the reload; connections already up keep the
//! config they started with (rustls holds its `Arc`). A file that does not load keeps the
//! old context: `Config::load` already refuses it, naming the key, and [`apply`] refuses it
//! again should the file change between the two reads.

use super::{TlsContext, TlsSettings};

/// Applies the reloaded `[tls]` (`new`) to the context in force (`ctx`, `None` when the
/// edge started without TLS). `Ok(what happened)` or `Err(why it was refused)`; both are
/// for the log and `POST /api/v1/reload`, and on `Err` nothing changed.
pub fn apply(ctx: Option<&TlsContext>, new: Option<&TlsSettings>) -> Result<&'static str, String> {
    match (ctx, new) {
        (None, None) => Ok("no [tls]"),
        (None, Some(_)) => Ok("[tls] added: a tls:/wss: listener needs a restart"),
        (Some(_), None) => Err(
            "[tls] removed: refused while tls:/wss: listeners are up (restart to drop them); old certificate kept"
                .into(),
        ),
        (Some(ctx), Some(s)) => match ctx.reload(s) {
            Ok(()) => {
                tracing::info!(target: "sip::tls", certificate = %s.certificate.display(), "SIGHUP: TLS certificate reloaded; new connections use it");
                Ok("TLS certificate reloaded")
            }
            Err((key, why)) => {
                tracing::error!(target: "sip::tls", key, error = %why, "SIGHUP: TLS reload refused, old certificate kept");
                Err(format!("key `{key}`: {why}; old certificate kept"))
            }
        },
    }
}
