//! Stellar's trust base: signatures anyone can check without trusting the server, and the
//! building blocks of a ledger nobody can quietly rewrite.
//!
//! - [`keys`]: P-256 key pairs, PKCS#8 PEM (optionally encrypted), key ids, the trust root.
//! - [`dsse`]: DSSE envelopes with in-toto Statement v1 payloads; offline verification that
//!   names exactly what failed.
//! - [`merkle`]: RFC 6962 / 9162 trees, inclusion and consistency proofs.
//! - [`checkpoint`]: signed tree heads as C2SP signed notes.
//! - [`ledger`]: ledger entries, their hash chain, and offline verification of an export and of
//!   proof bundles.
//! - [`intoto`]: in-toto layouts and links (what `in-toto-verify` reads) and their verifier.
//! - [`offline`]: signing-request files for keys kept offline.
//!
//! **Boundary:** no IO. The server stores keys and entries; the command line reads files; both
//! call this crate.

pub mod canonical;
pub mod checkpoint;
pub mod dsse;
pub mod intoto;
pub mod keys;
pub mod ledger;
pub mod merkle;
pub mod offline;
