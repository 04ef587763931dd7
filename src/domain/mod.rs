//! Values parsed once at the edge and trusted everywhere after.
mod country;
mod email;
mod ids;
mod licence;
mod phone;
mod plumm_user;

pub use country::country_code;
pub use email::{Email, EmailError};
pub use ids::{CompanyId, EntraObjectId, PlummUserId, TenantId, TenantIdError};
pub use licence::LicenceError;
pub use phone::{Phone, PhoneError};
pub use plumm_user::{PlummStatus, PlummUser, SnapshotError};
