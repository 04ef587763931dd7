//! Microsoft Graph: pure request builders and response classification, and
//! the I/O edge (tokens, pacing, HTTP).
pub mod assertion;
pub mod batch;
pub mod client;
pub mod licences;
pub mod request;
pub mod response;
mod settings;
pub mod token;
mod transport;
mod wire;

pub use assertion::ClientCertificate;
pub use client::{CallError, GraphClient, Sent};
pub use request::GraphRequest;
pub use response::{Failure, GraphError, Reply};
pub use settings::EntraSettings;
pub use token::{Credential, TokenError, TokenProvider};
