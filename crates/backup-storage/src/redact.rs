//! Redaction of storage URIs: secrets, URL passwords and unknown parameters
//! (which may be misspelled secrets) never show.

const SECRET_PARAMS: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_ACCOUNT_KEY",
    "CREDENTIALS",
];

/// Parameters whose values are shown in redacted URIs; everything else (secrets,
/// and unknown parameters that may be misspelled secrets) shows as `redacted`.
const SHOWN_PARAMS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_REGION",
    "AWS_ENDPOINT",
    "AUTH",
    "S3_STORAGE_CLASS",
    "ASSUME_ROLE",
    "AZURE_ACCOUNT_NAME",
    "AZURE_ENVIRONMENT",
    "COCKROACH_LOCALITY",
];

/// Redacts a URI for display: secret parameter values, unknown parameter values
/// and URL passwords become `redacted`. Works on strings that do not parse.
pub fn redact_uri(uri: &str) -> String {
    let (before_fragment, fragment) = match uri.split_once('#') {
        Some((b, _)) => (b, Some("redacted")),
        None => (uri, None),
    };
    let (base, query) = match before_fragment.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (before_fragment, None),
    };
    let mut out = redact_userinfo(base);
    if let Some(query) = query {
        out.push('?');
        let parts: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if !is_shown(key) => format!("{key}=redacted"),
                Some((key, value)) => format!("{key}={value}"),
                None => pair.to_string(),
            })
            .collect();
        out.push_str(&parts.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

fn is_shown(key: &str) -> bool {
    let decoded = percent_decode(key);
    SHOWN_PARAMS.iter().any(|p| *p == decoded)
}

pub(crate) fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("k={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn redact_userinfo(base: &str) -> String {
    let Some(scheme_end) = base.find("://") else {
        return base.to_string();
    };
    let authority_start = scheme_end + 3;
    let rest = &base[authority_start..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let user = authority[..at].split(':').next().unwrap_or("");
            format!(
                "{}{}:redacted@{}{}",
                &base[..authority_start],
                user,
                &authority[at + 1..],
                &rest[authority_end..]
            )
        }
        None => base.to_string(),
    }
}

/// All parameter names that carry secrets.
pub fn secret_params() -> &'static [&'static str] {
    SECRET_PARAMS
}
