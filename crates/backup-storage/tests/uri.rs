//! URI parsing, configuration and redaction, per scheme (including gs://,
//! which has no usable emulator here).
#![allow(clippy::unwrap_used)]

use backup_storage::{
    Auth, AzureEnvironment, Location, NodeRef, StorageContext, StorageError, StorageUri, open,
    redact_uri,
};
use base64::Engine as _;

fn reason(err: StorageError) -> String {
    match err {
        StorageError::InvalidUri { reason, .. } => reason,
        other => panic!("expected InvalidUri, got {other:?}"),
    }
}

#[test]
fn s3_parameters_parse() {
    let uri = StorageUri::parse(
        "s3://bucket/a/b?AWS_ACCESS_KEY_ID=AKID&AWS_SECRET_ACCESS_KEY=sek&AWS_SESSION_TOKEN=tok&AWS_REGION=eu-west-1&AWS_ENDPOINT=http%3A%2F%2F127.0.0.1%3A9000&S3_STORAGE_CLASS=INTELLIGENT_TIERING&COCKROACH_LOCALITY=region%3Dus-east1",
    )
    .unwrap();
    let Location::S3(c) = uri.location() else {
        panic!("not s3")
    };
    assert_eq!(c.bucket, "bucket");
    assert_eq!(c.prefix, "a/b");
    assert_eq!(c.auth, Auth::Specified);
    assert_eq!(c.access_key_id.as_deref(), Some("AKID"));
    assert_eq!(c.secret_access_key.as_ref().unwrap().expose(), "sek");
    assert_eq!(c.session_token.as_ref().unwrap().expose(), "tok");
    assert_eq!(c.region.as_deref(), Some("eu-west-1"));
    assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    assert_eq!(c.storage_class.as_deref(), Some("INTELLIGENT_TIERING"));
    assert_eq!(uri.locality(), Some(("region", "us-east1")));
}

#[test]
fn s3_auth_rules() {
    let implicit = StorageUri::parse("s3://b/p?AUTH=implicit").unwrap();
    let Location::S3(c) = implicit.location() else {
        panic!()
    };
    assert_eq!(c.auth, Auth::Implicit);
    let missing = reason(StorageUri::parse("s3://b/p?AWS_ACCESS_KEY_ID=x").unwrap_err());
    assert!(missing.contains("AWS_SECRET_ACCESS_KEY"), "{missing}");
    let mixed =
        reason(StorageUri::parse("s3://b/p?AUTH=implicit&AWS_SECRET_ACCESS_KEY=x").unwrap_err());
    assert!(mixed.contains("AUTH=implicit"), "{mixed}");
    let bad = reason(StorageUri::parse("s3://b/p?AUTH=sometimes").unwrap_err());
    assert!(bad.contains("AUTH=specified or AUTH=implicit"), "{bad}");
}

#[test]
fn s3_storage_class_is_validated() {
    for class in backup_storage::S3_STORAGE_CLASSES {
        StorageUri::parse(&format!("s3://b?AUTH=implicit&S3_STORAGE_CLASS={class}")).unwrap();
    }
    let err = reason(StorageUri::parse("s3://b?AUTH=implicit&S3_STORAGE_CLASS=COLD").unwrap_err());
    assert!(
        err.contains("COLD") && err.contains("INTELLIGENT_TIERING"),
        "{err}"
    );
}

#[test]
fn assume_role_is_parsed_and_opened() {
    let uri = StorageUri::parse("s3://b?AUTH=implicit&ASSUME_ROLE=arn:aws:iam::1:role/r").unwrap();
    let Location::S3(c) = uri.location() else {
        panic!()
    };
    assert_eq!(c.assume_role.as_deref(), Some("arn:aws:iam::1:role/r"));
    // The role is shown (it is not a secret); STS is only asked on first use.
    assert!(
        uri.to_string()
            .contains("ASSUME_ROLE=arn:aws:iam::1:role/r")
    );
    let uri = StorageUri::parse(
        "s3://b?AWS_ACCESS_KEY_ID=i&AWS_SECRET_ACCESS_KEY=s&ASSUME_ROLE=arn:aws:iam::1:role/a,arn:aws:iam::2:role/b",
    )
    .unwrap();
    open(&uri, &StorageContext::default()).unwrap();
    let err = StorageUri::parse("s3://b?AUTH=implicit&ASSUME_ROLE=backup").unwrap_err();
    assert!(matches!(err, StorageError::InvalidUri { .. }), "{err}");
}

#[test]
fn unknown_and_repeated_parameters_are_named() {
    let err =
        reason(StorageUri::parse("s3://b?AWS_ACCESS_KEY_ID=a&AWS_SECRET_ACESS_KEY=x").unwrap_err());
    assert!(
        err.contains("unknown parameter AWS_SECRET_ACESS_KEY"),
        "{err}"
    );
    let err = reason(StorageUri::parse("nodelocal://1/x?AWS_REGION=x").unwrap_err());
    assert!(err.contains("AWS_REGION"), "{err}");
    let err = reason(StorageUri::parse("s3://b?AUTH=implicit&AUTH=implicit").unwrap_err());
    assert!(err.contains("more than once"), "{err}");
}

#[test]
fn http_is_rejected_clearly() {
    for uri in ["http://host/path", "https://host/path"] {
        let err = reason(StorageUri::parse(uri).unwrap_err());
        assert_eq!(err, "HTTP storage is not supported for BACKUP and RESTORE");
    }
    let err = reason(StorageUri::parse("ftp://host/path").unwrap_err());
    assert!(err.contains("unknown scheme ftp"), "{err}");
}

fn gcs_key() -> String {
    let json = r#"{"type":"service_account","client_email":"a@b.iam.gserviceaccount.com","private_key":"-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----\n","private_key_id":"k"}"#;
    base64::engine::general_purpose::STANDARD.encode(json)
}

#[test]
fn gcs_credentials_are_decoded_and_checked() {
    let key = gcs_key();
    let uri = StorageUri::parse(&format!("gs://bkt/dir?AUTH=specified&CREDENTIALS={key}")).unwrap();
    let Location::Gcs(c) = uri.location() else {
        panic!()
    };
    assert_eq!(c.bucket, "bkt");
    assert_eq!(c.prefix, "dir");
    assert!(
        c.credentials
            .as_ref()
            .unwrap()
            .expose()
            .contains("service_account")
    );
    assert!(!uri.to_string().contains(&key));
    // '+' turned into ' ' by form decoding still decodes.
    let plus = base64::engine::general_purpose::STANDARD.encode(r#"{"type":"x","p":">>>>"}"#);
    assert!(plus.contains('+'));
    StorageUri::parse(&format!("gs://bkt?CREDENTIALS={plus}")).unwrap();

    let err = reason(StorageUri::parse("gs://bkt?AUTH=specified").unwrap_err());
    assert!(err.contains("CREDENTIALS"), "{err}");
    let err = reason(StorageUri::parse("gs://bkt?CREDENTIALS=%%%").unwrap_err());
    assert!(err.contains("base64") || err.contains("not a URI"), "{err}");
    let not_json = base64::engine::general_purpose::STANDARD.encode("hello");
    let err = reason(StorageUri::parse(&format!("gs://bkt?CREDENTIALS={not_json}")).unwrap_err());
    assert!(err.contains("JSON"), "{err}");
    let implicit = StorageUri::parse("gs://bkt?AUTH=implicit").unwrap();
    let Location::Gcs(c) = implicit.location() else {
        panic!()
    };
    assert_eq!(c.auth, Auth::Implicit);
    assert!(c.credentials.is_none());
}

#[test]
fn gcs_client_is_configured_from_the_key() {
    // A key whose private key does not parse is refused when opening, and the
    // error names neither the key nor its contents.
    let uri = StorageUri::parse(&format!("gs://bkt?CREDENTIALS={}", gcs_key())).unwrap();
    let err = open(&uri, &StorageContext::default()).unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, StorageError::InvalidUri { .. }), "{text}");
    assert!(
        !text.contains("not-a-key") && !text.contains(&gcs_key()),
        "{text}"
    );
}

#[test]
fn azure_parameters_parse() {
    for scheme in ["azure", "azure-blob"] {
        let uri = StorageUri::parse(&format!(
            "{scheme}://cont/p?AZURE_ACCOUNT_NAME=acct&AZURE_ACCOUNT_KEY=a2V5&AZURE_ENVIRONMENT=AzureChinaCloud"
        ))
        .unwrap();
        let Location::Azure(c) = uri.location() else {
            panic!()
        };
        assert_eq!((c.container.as_str(), c.prefix.as_str()), ("cont", "p"));
        assert_eq!(c.account_name, "acct");
        assert_eq!(c.account_key.expose(), "a2V5");
        assert_eq!(c.environment, AzureEnvironment::China);
        assert_eq!(c.environment.blob_suffix(), "blob.core.chinacloudapi.cn");
    }
    let err = reason(StorageUri::parse("azure://c?AZURE_ACCOUNT_NAME=a").unwrap_err());
    assert!(err.contains("AZURE_ACCOUNT_KEY"), "{err}");
    let err = reason(
        StorageUri::parse(
            "azure://c?AZURE_ACCOUNT_NAME=a&AZURE_ACCOUNT_KEY=k&AZURE_ENVIRONMENT=Mars",
        )
        .unwrap_err(),
    );
    assert!(err.contains("Mars"), "{err}");
}

#[test]
fn local_schemes_parse() {
    let uri = StorageUri::parse("nodelocal://2/backups/x").unwrap();
    assert_eq!(
        uri.location(),
        &Location::Nodelocal {
            node: NodeRef::Id(2),
            path: "backups/x".into()
        }
    );
    let uri = StorageUri::parse("nodelocal://self/b").unwrap();
    assert!(matches!(
        uri.location(),
        Location::Nodelocal {
            node: NodeRef::This,
            ..
        }
    ));
    let uri = StorageUri::parse("userfile://defaultdb.public.userfiles_root/b").unwrap();
    assert_eq!(
        uri.location(),
        &Location::Userfile {
            table: "defaultdb.public.userfiles_root".into(),
            path: "b".into()
        }
    );
    let uri = StorageUri::parse("file:///mnt/nfs/backups").unwrap();
    assert_eq!(
        uri.location(),
        &Location::File {
            path: "/mnt/nfs/backups".into()
        }
    );
    assert!(StorageUri::parse("nodelocal://x/b").is_err());
    assert!(StorageUri::parse("file://otherhost/b").is_err());
}

#[test]
fn escaping_paths_are_rejected() {
    for uri in [
        "nodelocal://1/../etc",
        "nodelocal://1/a/%2E%2E/b",
        "nodelocal://1/a/..%2F..%2Fb",
        "nodelocal://1/a%2F..%2F..",
        "file:///a/../b",
    ] {
        let err = StorageUri::parse(uri);
        assert!(err.is_err(), "{uri} accepted: {err:?}");
    }
}

#[test]
fn locality_is_parsed() {
    let uri = StorageUri::parse("nodelocal://1/b?COCKROACH_LOCALITY=region%3Dus-west").unwrap();
    assert_eq!(uri.locality(), Some(("region", "us-west")));
    let uri = StorageUri::parse("nodelocal://1/b?COCKROACH_LOCALITY=default").unwrap();
    assert_eq!(uri.locality(), None);
    assert!(StorageUri::parse("nodelocal://1/b?COCKROACH_LOCALITY=novalue").is_err());
}

#[test]
fn redaction_covers_secrets_passwords_and_unknown_parameters() {
    assert_eq!(
        redact_uri(
            "s3://b/p?AWS_ACCESS_KEY_ID=id&AWS_SECRET_ACCESS_KEY=s1&AWS_SESSION_TOKEN=t1&AWS_REGION=r"
        ),
        "s3://b/p?AWS_ACCESS_KEY_ID=id&AWS_SECRET_ACCESS_KEY=redacted&AWS_SESSION_TOKEN=redacted&AWS_REGION=r"
    );
    assert_eq!(
        redact_uri("azure://c?AZURE_ACCOUNT_NAME=n&AZURE_ACCOUNT_KEY=k"),
        "azure://c?AZURE_ACCOUNT_NAME=n&AZURE_ACCOUNT_KEY=redacted"
    );
    assert_eq!(
        redact_uri("gs://b?CREDENTIALS=abc"),
        "gs://b?CREDENTIALS=redacted"
    );
    // A misspelled secret parameter is redacted too; so is a URL password.
    assert_eq!(
        redact_uri("s3://b?AWS_SECRET_ACESS_KEY=s"),
        "s3://b?AWS_SECRET_ACESS_KEY=redacted"
    );
    assert_eq!(redact_uri("s3://user:pw@b/p"), "s3://user:redacted@b/p");
    // Works on garbage.
    assert_eq!(
        redact_uri("::not a uri?CREDENTIALS=x"),
        "::not a uri?CREDENTIALS=redacted"
    );
    let uri =
        StorageUri::parse("s3://b?AWS_ACCESS_KEY_ID=id&AWS_SECRET_ACCESS_KEY=verysecret").unwrap();
    assert!(!format!("{uri} {uri:?}").contains("verysecret"));
}
