//! The address classification, the policy's decisions, and the resolver against a real
//! listener on 127.0.0.1 that must never be reached.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn policy(allow: &[&str], deny: &[&str]) -> OutboundPolicy {
    OutboundConfig {
        allow: allow.iter().map(|s| s.to_string()).collect(),
        deny: deny.iter().map(|s| s.to_string()).collect(),
        allow_loopback: false,
    }
    .policy()
    .unwrap()
}

#[test]
fn addresses_are_classified() {
    use AddrClass::*;
    for (addr, class) in [
        ("127.0.0.1", Loopback),
        ("127.255.0.9", Loopback),
        ("::1", Loopback),
        ("::ffff:127.0.0.1", Loopback),
        ("::127.0.0.1", Loopback),
        ("64:ff9b::7f00:1", Loopback),
        ("2002:7f00:1::", Loopback),
        ("169.254.169.254", LinkLocal),
        ("::ffff:169.254.169.254", LinkLocal),
        ("fe80::1", LinkLocal),
        ("febf::1", LinkLocal),
        ("fd00:ec2::254", Metadata),
        ("100.100.100.200", Metadata),
        ("0.0.0.0", Unspecified),
        ("0.1.2.3", Unspecified),
        ("::", Unspecified),
        ("::ffff:0.0.0.0", Unspecified),
        ("224.0.0.1", Multicast),
        ("239.255.255.250", Multicast),
        ("ff02::1", Multicast),
        ("255.255.255.255", Broadcast),
        ("240.0.0.1", Reserved),
        ("fec0::1", Reserved),
        ("10.1.2.3", Private),
        ("172.16.0.1", Private),
        ("172.31.255.255", Private),
        ("192.168.1.5", Private),
        ("100.64.0.1", Private),
        ("fc00::1", Private),
        ("fd12:3456::1", Private),
        ("::ffff:10.1.2.3", Private),
        ("8.8.8.8", Public),
        ("172.32.0.1", Public),
        ("169.255.0.1", Public),
        ("2001:db8::1", Public),
        ("2606:4700::1111", Public),
    ] {
        assert_eq!(classify(ip(addr)), class, "{addr}");
    }
}

proptest! {
    /// An IPv4 address is judged the same in every IPv6 form that reaches it.
    #[test]
    fn ipv4_inside_ipv6_is_judged_as_itself(n in any::<u32>()) {
        let v4 = Ipv4Addr::from(n);
        let want = classify(IpAddr::V4(v4));
        prop_assert_eq!(classify(IpAddr::V6(v4.to_ipv6_mapped())), want);
        let [a, b, c, d] = v4.octets();
        let nat64 = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
        prop_assert_eq!(classify(IpAddr::V6(nat64)), want);
        let six_to_four = Ipv6Addr::new(0x2002, u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]), 0, 0, 0, 0, 1);
        prop_assert_eq!(classify(IpAddr::V6(six_to_four)), want);
    }

    /// Whatever the lists say, an always-refused address stays refused.
    #[test]
    fn the_lists_cannot_allow_the_refused(n in any::<u32>(), v6 in any::<u128>()) {
        let open = policy(&["0.0.0.0/0", "::/0"], &[]);
        for addr in [IpAddr::V4(Ipv4Addr::from(n)), IpAddr::V6(Ipv6Addr::from(v6))] {
            let refused = classify(addr).always_refused();
            prop_assert_eq!(open.check_addr(None, addr).is_err(), refused, "{}", addr);
            prop_assert_eq!(OutboundPolicy::default().check_addr(None, addr).is_err(), refused);
        }
    }
}

#[test]
fn urls_are_checked_in_every_spelling() {
    let p = OutboundPolicy::default();
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:8080/",
        "http://[::ffff:7f00:1]/",
        "http://[fd00:ec2::254]/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://127.1/",
        "http://0/",
        "http://[::]/",
        "http://localhost:9000/hook",
        "http://LOCALHOST./hook",
        "http://api.localhost/hook",
        "http://[fe80::1%25eth0]/",
        "http://224.0.0.1/",
    ] {
        if let Ok(u) = reqwest::Url::parse(url) {
            assert!(p.check_url(&u).is_err(), "{url} passed");
        }
    }
    for url in [
        "http://10.1.2.3/hook",
        "https://billing.example.com/hooks",
        "http://192.168.1.5:8000/",
        "http://[fd12::5]/",
    ] {
        assert_eq!(p.check_url_str(url), Ok(()), "{url}");
    }
    assert_eq!(p.check_url_str("not a url"), Err(Refusal::NoHost));
}

#[test]
fn allow_narrows_and_deny_wins() {
    let p = policy(&["192.168.0.0/16", "billing.example.com"], &[]);
    assert!(p.check_url_str("http://192.168.1.5/").is_ok());
    assert!(matches!(
        p.check_url_str("http://10.1.2.3/hook"),
        Err(Refusal::NotAllowed(_))
    ));
    assert!(p.check_url_str("https://billing.example.com/").is_ok());
    // A name that may resolve into an allowed block waits for its addresses.
    assert!(p.check_name("intranet.office").is_ok());
    assert!(
        p.check_addr(Some("intranet.office"), ip("10.0.0.1"))
            .is_err()
    );
    assert!(
        p.check_addr(Some("intranet.office"), ip("192.168.0.9"))
            .is_ok()
    );
    // An allowed name is allowed at whatever (not refused) address it has.
    assert!(
        p.check_addr(Some("billing.example.com"), ip("10.0.0.1"))
            .is_ok()
    );
    assert!(
        p.check_addr(Some("billing.example.com"), ip("127.0.0.1"))
            .is_err(),
        "an allowed name cannot bring loopback back"
    );

    let names_only = policy(&["*.example.com"], &[]);
    assert!(
        names_only
            .check_url_str("https://hooks.example.com/")
            .is_ok()
    );
    assert!(names_only.check_url_str("https://example.org/").is_err());
    assert!(
        names_only
            .check_url_str("https://evil-example.com/")
            .is_err()
    );

    let p = policy(
        &["10.0.0.0/8", "billing.example.com"],
        &["10.9.0.0/16", "billing.example.com"],
    );
    assert!(p.check_url_str("http://10.1.2.3/").is_ok());
    assert!(matches!(
        p.check_url_str("http://10.9.1.1/"),
        Err(Refusal::Denied(_))
    ));
    assert!(matches!(
        p.check_url_str("http://[::ffff:10.9.1.1]/"),
        Err(Refusal::Denied(_))
    ));
    assert!(matches!(
        p.check_url_str("https://Billing.Example.COM./"),
        Err(Refusal::Denied(_))
    ));
    assert!(
        p.check_addr(Some("other.example.com"), ip("10.9.3.3"))
            .is_err()
    );
}

#[test]
fn loopback_comes_back_only_with_allow_loopback() {
    let p = OutboundConfig {
        allow_loopback: true,
        ..Default::default()
    }
    .policy()
    .unwrap();
    assert!(p.allows_loopback());
    assert!(p.check_url_str("http://127.0.0.1:9000/").is_ok());
    assert!(p.check_url_str("http://localhost:9000/").is_ok());
    assert!(p.check_url_str("http://[::1]:9000/").is_ok());
    // Never metadata, link-local or unspecified.
    for url in [
        "http://169.254.169.254/",
        "http://[fd00:ec2::254]/",
        "http://0.0.0.0:9000/",
    ] {
        assert!(p.check_url_str(url).is_err(), "{url}");
    }
}

#[test]
fn entries_that_are_not_addresses_or_names_are_refused() {
    for bad in [
        "10.0.0.0/33",
        "http://x.example/",
        "a b",
        "",
        "*.",
        "exa mple.com",
    ] {
        let e = OutboundConfig {
            deny: vec![bad.to_string()],
            ..Default::default()
        }
        .policy()
        .unwrap_err();
        assert_eq!(e.key, "deny", "{bad}");
    }
    let p = OutboundConfig {
        allow: vec!["10.0.0.1".into(), "[fd00::1]".into(), "10.1.2.3/8".into()],
        ..Default::default()
    }
    .policy()
    .unwrap();
    assert!(p.check_url_str("http://10.0.0.1/").is_ok());
    assert!(
        p.check_url_str("http://10.200.0.1/").is_ok(),
        "10.1.2.3/8 is 10/8"
    );
    assert!(p.check_url_str("http://[fd00::1]/").is_ok());
    assert!(p.check_url_str("http://[fd00::2]/").is_err());
}

/// A listener on 127.0.0.1 that counts the connections it accepts.
async fn counting_listener() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = n.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(s);
        }
    });
    (port, n)
}

#[tokio::test]
async fn the_resolver_refuses_a_name_that_resolves_to_a_refused_address() {
    let (port, hits) = counting_listener().await;
    // Loopback allowed by the escape, but every loopback address denied: `localhost` passes
    // the name check and must be stopped on its addresses.
    let p = OutboundConfig {
        allow_loopback: true,
        deny: vec!["127.0.0.0/8".into(), "::1".into()],
        ..Default::default()
    }
    .policy()
    .unwrap();
    assert!(
        p.check_url_str(&format!("http://localhost:{port}/"))
            .is_ok()
    );
    let r = PolicyResolver::new(p.clone());
    let e = r.lookup("localhost").await.unwrap_err();
    assert!(is_refused(e.as_ref()), "{e}");
    let client = p
        .client_builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let e = client
        .get(format!("http://localhost:{port}/"))
        .send()
        .await
        .unwrap_err();
    assert!(is_refused(&e), "{e:?}");
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "never connected"
    );

    // The default policy refuses the name before asking the resolver.
    let e = PolicyResolver::new(OutboundPolicy::default())
        .lookup("localhost")
        .await
        .unwrap_err();
    assert!(is_refused(e.as_ref()), "{e}");

    // Allowed: the same client reaches the same listener.
    let open = OutboundPolicy::allowing_loopback();
    let client = open
        .client_builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let _ = client.get(format!("http://localhost:{port}/")).send().await;
    assert!(
        hits.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "connected"
    );
}
