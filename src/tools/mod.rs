//! Tools around the product: the demo (a simulated campaign over a built-in day) and the
//! benchmark (`rappel bench`). They drive the same engine as the server; nothing imports them.

pub mod bench;
pub mod demo;
