//! The full-process record of one case or enforcement target (DOMAIN R3): records from
//! several devices read together, in gateway-time order, each chain re-verified.

use protocol::message::RecordOutcome;
use test_support::backends;

use crate::support::{Chain, T0, content, device, gateway, outcomes, push};

const HOUR: i64 = 3_600_000;

#[tokio::test]
async fn records_of_a_case_from_several_devices_read_together_in_gateway_time_order() {
    for backend in backends().await {
        let (gw, _clock) = gateway(&backend, 2, |_| {}).await;
        let store = gw.gateway.state().store.clone();
        // Device 1's clock is right; device 2's runs an hour fast.
        let (d1, c1) = device(&gw, 1, T0).await;
        let (d2, c2) = device(&gw, 2, T0 + HOUR).await;
        let mut chain1 = Chain::new(&d1);
        let mut chain2 = Chain::new(&d2);

        let a = chain1.seal(content("C-7", "initiation", T0 + 1000));
        let other = chain1.seal(content("C-8", "another case", T0 + 1500));
        let mut c = chain1.seal(content("C-7", "evidence taken", T0 + 3000));
        c.content.target = "target of C-7".into();
        let b = chain2.seal(content("C-7", "recorder joins", T0 + HOUR + 2000));
        let mut same_target = content("C-9", "same shop, new case", T0 + HOUR + 4000);
        same_target.target = "target of C-7".into();
        let d = chain2.seal(same_target);

        assert_eq!(
            outcomes(&push(&c1, vec![a.clone(), other, c.clone()]).await),
            vec![RecordOutcome::Stored; 3]
        );
        assert_eq!(
            outcomes(&push(&c2, vec![b.clone(), d.clone()]).await),
            vec![RecordOutcome::Stored; 2]
        );

        let view = store.case_records("C-7").await.unwrap();
        let texts: Vec<&str> = view
            .records
            .iter()
            .map(|r| r.record.content.text.as_str())
            .collect();
        assert_eq!(
            texts,
            vec!["initiation", "recorder joins", "evidence taken"],
            "{}",
            backend.name()
        );
        assert!(view.chain_verified());
        assert_eq!(
            view.records
                .iter()
                .map(|r| r.made_at_gateway)
                .collect::<Vec<_>>(),
            vec![T0 + 1000, T0 + 2000, T0 + 3000],
            "device times are corrected by each device's measured skew"
        );
        assert_eq!(view.records[1].device, d2);
        assert_eq!(view.records[1].record, b);
        assert_eq!(view.records[0].received_at, T0);

        let by_target = store.target_records("target of C-7").await.unwrap();
        let texts: Vec<&str> = by_target
            .records
            .iter()
            .map(|r| r.record.content.text.as_str())
            .collect();
        assert_eq!(
            texts,
            vec![
                "initiation",
                "recorder joins",
                "evidence taken",
                "same shop, new case"
            ],
            "{}",
            backend.name()
        );
        assert!(by_target.chain_verified());
        assert!(
            store
                .case_records("C-none")
                .await
                .unwrap()
                .records
                .is_empty()
        );
        gw.gateway.shutdown().await;
    }
}
