//! The demo connects its companies the way a Plumm admin does: the Store's
//! signed Connect link, the (emulated) Microsoft consent page, Accept, the
//! OAuth callback, back to the Store.
use std::collections::HashMap;

use anyhow::{bail, Context as _};
use url::Url;

use crate::http::signed::sign_query;
use crate::http::StoreKey;

fn location(r: &reqwest::Response) -> anyhow::Result<Url> {
    let raw = r
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .with_context(|| format!("{} answered {} without a Location", r.url(), r.status()))?;
    Ok(Url::parse(raw)?)
}

/// Runs the browser's steps; returns the Store URL it lands on.
pub(super) async fn through_the_store(
    http: &reqwest::Client,
    connect_base: &str,
    key: &StoreKey,
    company: i64,
    store_admin: &str,
    entra_admin: &str,
) -> anyhow::Result<Url> {
    let exp = chrono::Utc::now().timestamp() + 300;
    let link = format!(
        "{connect_base}/connect?{}",
        sign_query(key, company, store_admin, exp)
    );
    let consent = location(&http.get(&link).send().await?)?;
    let page = http.get(consent.as_str()).send().await?;
    if !page.status().is_success() || !page.text().await?.contains("Accept") {
        bail!("the consent page at {consent} did not show an Accept button");
    }
    let q: HashMap<String, String> = consent.query_pairs().into_owned().collect();
    let mut form: Vec<(&str, &str)> = ["client_id", "redirect_uri", "scope", "state"]
        .iter()
        .map(|k| (*k, q.get(*k).map(String::as_str).unwrap_or_default()))
        .collect();
    form.push(("account", entra_admin));
    form.push(("action", "accept"));
    let callback = location(&http.post(consent.as_str()).form(&form).send().await?)?;
    let store = location(&http.get(callback.as_str()).send().await?)?;
    let status = store
        .query_pairs()
        .find(|(k, _)| k == "status")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if status != "connected" {
        bail!("company {company} did not connect: {store}");
    }
    Ok(store)
}
