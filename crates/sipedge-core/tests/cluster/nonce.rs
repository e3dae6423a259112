//! Nonces across edges (issue 20 item 6).
