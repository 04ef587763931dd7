//! Microsoft Graph's identity and access limits, as the daemon budgets them
//! (learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits):
//! per app and tenant, resource units per 10 s by tenant size and 3,000
//! writes per 150 s; per app across tenants, 150,000 resource units per 20 s
//! and 35,000 writes per 5 minutes; per tenant across apps, 18,000 writes per
//! 5 minutes. Graph meters them as token buckets, so the daemon does too.
use serde::Deserialize;

/// Tenant size classes of the limits: fewer than 50 users, 50 to 500, more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantSize {
    #[default]
    Small,
    Medium,
    Large,
}

impl TenantSize {
    pub fn resource_units_per_10s(self) -> f64 {
        match self {
            TenantSize::Small => 3_500.0,
            TenantSize::Medium => 5_000.0,
            TenantSize::Large => 8_000.0,
        }
    }

    pub fn for_user_count(n: usize) -> Self {
        match n {
            0..50 => TenantSize::Small,
            50..=500 => TenantSize::Medium,
            _ => TenantSize::Large,
        }
    }
}

/// A limit: `capacity` units per `window_secs`, refilled continuously.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub capacity: f64,
    pub window_secs: f64,
}

impl Rate {
    pub const fn new(capacity: f64, window_secs: f64) -> Self {
        Self {
            capacity,
            window_secs,
        }
    }

    pub fn per_sec(&self) -> f64 {
        self.capacity / self.window_secs
    }
}

/// The limits for one tenant (as seen by this app).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TenantLimits {
    pub resource_units: Rate,
    pub writes: Rate,
    /// All apps together in the tenant: an upper bound the daemon also respects.
    pub tenant_writes: Rate,
}

impl TenantLimits {
    pub fn documented(size: TenantSize) -> Self {
        Self {
            resource_units: Rate::new(size.resource_units_per_10s(), 10.0),
            writes: Rate::new(3_000.0, 150.0),
            tenant_writes: Rate::new(18_000.0, 300.0),
        }
    }
}

/// The limits for the app across all its tenants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AppLimits {
    pub resource_units: Rate,
    pub writes: Rate,
}

impl AppLimits {
    pub fn documented() -> Self {
        Self {
            resource_units: Rate::new(150_000.0, 20.0),
            writes: Rate::new(35_000.0, 300.0),
        }
    }
}

/// What one request costs: resource units and writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    pub resource_units: f64,
    pub writes: f64,
}

impl Cost {
    /// The documented cost table: GET of the users collection 2, any other
    /// GET 1, a write 1 plus one write; `$select` -1, `$expand` +1, `$top`
    /// under 20 -1; never below 1.
    pub fn of(method: &http::Method, path: &str, query: &[(&str, String)]) -> Self {
        let get = method == http::Method::GET;
        let collection = get && path.trim_end_matches('/') == "/users";
        let mut ru: i32 = if collection { 2 } else { 1 };
        for (k, v) in query {
            match *k {
                "$select" => ru -= 1,
                "$expand" => ru += 1,
                "$top" if v.parse::<u32>().is_ok_and(|t| t < 20) => ru -= 1,
                _ => {}
            }
        }
        Self {
            resource_units: f64::from(ru.max(1)),
            writes: if get { 0.0 } else { 1.0 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn costs_follow_the_documented_table() {
        let sel = |s: &str| vec![("$select", s.to_string())];
        assert_eq!(Cost::of(&Method::GET, "/users", &[]).resource_units, 2.0);
        assert_eq!(
            Cost::of(&Method::GET, "/users", &sel("id")).resource_units,
            1.0
        );
        let top = vec![("$top", "1".to_string()), ("$select", "id".to_string())];
        assert_eq!(
            Cost::of(&Method::GET, "/users", &top).resource_units,
            1.0,
            "never below 1"
        );
        assert_eq!(
            Cost::of(&Method::GET, "/users/abc", &[]).resource_units,
            1.0
        );
        let post = Cost::of(&Method::POST, "/users", &[]);
        assert_eq!((post.resource_units, post.writes), (1.0, 1.0));
    }
}
