use super::*;

#[test]
fn url_checks_before_sending() {
    assert_eq!(
        check_url("http://example.com/x", false),
        Err(FetchError::NotHttps)
    );
    assert_eq!(check_url("not a url", false), Err(FetchError::InvalidUrl));
    assert_eq!(
        check_url("https://169.254.169.254/latest", false),
        Err(FetchError::Refused("link-local address"))
    );
    assert_eq!(
        check_url("https://[::ffff:127.0.0.1]/", false),
        Err(FetchError::Refused("loopback address"))
    );
    // The WHATWG parser turns numeric hosts into IPv4 literals, so they are checked too.
    assert_eq!(
        check_url("https://2130706433/", false),
        Err(FetchError::Refused("loopback address"))
    );
    assert!(check_url("https://127.0.0.1/", true).is_ok());
    assert!(check_url("https://example.com/sector.json", false).is_ok());
    assert!(check_url("https://93.184.215.14/", false).is_ok());
}

#[test]
fn sector_membership_is_exact() {
    let doc = vec![
        "https://a.example/cb".to_owned(),
        "https://b.example/cb".to_owned(),
    ];
    assert!(check_sector(&["https://a.example/cb".into()], &doc).is_ok());
    assert!(check_sector(&[], &doc).is_ok());
    for other in [
        "https://a.example/cb/",
        "https://A.example/cb",
        "https://a.example/c%62",
    ] {
        let err = check_sector(&["https://b.example/cb".into(), other.into()], &doc);
        assert!(err.unwrap_err().contains(other));
    }
}

#[test]
fn error_messages_are_ascii() {
    let errors = [
        FetchError::InvalidUrl,
        FetchError::NotHttps,
        FetchError::Refused(guard::RESOLVES_NON_PUBLIC),
        FetchError::Timeout,
        FetchError::Connect("x"),
        FetchError::Redirect(302),
        FetchError::Status(500),
        FetchError::TooLarge(65536),
        FetchError::NotJson,
        FetchError::Busy,
    ];
    for err in errors {
        assert!(err.to_string().is_ascii());
    }
    assert_eq!(
        FetchError::Refused(guard::RESOLVES_NON_PUBLIC).to_string(),
        "refused: resolves to a non-public address"
    );
}
