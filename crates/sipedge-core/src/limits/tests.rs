use super::*;

fn db(text: &[(&str, Option<&str>, Option<u32>)], accounts: &[(&str, Option<u32>)]) -> Arc<AuthDb> {
    let spec = AuthSpec {
        accounts: accounts
            .iter()
            .map(|(n, c)| crate::auth_db::db::AccountSpec {
                name: (*n).into(),
                channels: *c,
                ..Default::default()
            })
            .collect(),
        users: text
            .iter()
            .map(|(n, a, c)| crate::auth_db::db::UserSpec {
                username: (*n).into(),
                account: a.map(Into::into),
                channels: *c,
                ha1_md5: Some([b'0'; 32]),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    Arc::new(AuthDb::build(&spec).unwrap_or_else(|e| panic!("{e}")))
}

#[test]
fn counters_survive_a_reload_and_a_lowered_limit_refuses_new_calls_only() {
    let d = db(&[("alice", Some("acme"), Some(3))], &[("acme", None)]);
    let t = LimitsTable::build(&d, LimitsSpec::default(), None).into_handle();
    let p = Parties {
        caller_user: Some(0),
        caller_account: Some(0),
        ..Parties::default()
    };
    let held: Vec<Charge> = (0..3).map(|_| t.admit(&p, 0).unwrap_or_default()).collect();
    assert_eq!(t.admit(&p, 0).err(), Some(LimitRefusal::UserChannels));
    let d2 = db(&[("alice", Some("acme"), Some(2))], &[("acme", None)]);
    let t2 = LimitsTable::build(&d2, LimitsSpec::default(), Some(&t)).into_handle();
    assert_eq!(t2.user("", "alice"), Some((Limit::new(Some(2), None), 3)));
    assert_eq!(t2.admit(&p, 0).err(), Some(LimitRefusal::UserChannels));
    drop(held);
    assert_eq!(t2.user("", "alice").map(|u| u.1), Some(0));
    assert_eq!(t2.server_channels(), 0);
    assert!(t2.admit(&p, 0).is_ok());
}

#[test]
fn capacity_check_names_account_capacity_sum_and_users() {
    let spec = AuthSpec {
        accounts: vec![crate::auth_db::db::AccountSpec {
            name: "acme".into(),
            channels: Some(10),
            ..Default::default()
        }],
        users: ["alice", "bob"]
            .iter()
            .map(|n| crate::auth_db::db::UserSpec {
                username: (*n).into(),
                account: Some("acme".into()),
                channels: Some(6),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let e = check_capacity(&spec).err().unwrap_or_default();
    assert!(
        e.starts_with("No channel capacity available for your account"),
        "{e}"
    );
    for part in ["acme", "10", "12", "alice (6)", "bob (6)"] {
        assert!(e.contains(part), "{part} in {e}");
    }
    let mut ok = spec.clone();
    ok.users[1].channels = Some(4);
    assert_eq!(check_capacity(&ok), Ok(()));
}

#[test]
fn per_ip_limits_count_each_source_apart() {
    let d = db(&[], &[]);
    let spec = LimitsSpec {
        ip_auth: vec![(
            "10.0.0.0/8".parse().unwrap_or_else(|_| unreachable!()),
            Limit::new(Some(1), None),
        )],
        ..LimitsSpec::default()
    };
    let t = LimitsTable::build(&d, spec, None).into_handle();
    let p = |ip: &str| Parties {
        ip: ip.parse().ok(),
        ..Parties::default()
    };
    let a = t.admit(&p("10.0.0.1"), 0);
    assert!(a.is_ok());
    assert_eq!(
        t.admit(&p("10.0.0.1"), 0).err(),
        Some(LimitRefusal::IpChannels)
    );
    assert!(
        t.admit(&p("10.0.0.2"), 0).is_ok(),
        "another source, its own count"
    );
    assert_eq!(t.ip_keys_used(), 2);
}
