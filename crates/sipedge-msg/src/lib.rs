//! `sipedge-msg`: zero-copy SIP message parsing, serialization and editing.
