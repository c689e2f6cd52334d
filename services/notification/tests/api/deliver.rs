use creneau_proto::notification::v1::event_outcome::Outcome;
use creneau_proto::notification::v1::{DeliverRequest, Event};

use crate::helpers::{TestApp, confirmation};

async fn an_event_becomes_one_message_however_often_it_is_relayed(app: TestApp) {
    let mut client = app.client.clone();
    let event = confirmation("event-1", "fr");
    let first = client.deliver(DeliverRequest { events: vec![event.clone()] }).await.unwrap().into_inner();
    assert_eq!(first.accepted, 1);
    // Relays are at least once: the same event again, alone and in a batch.
    let again = client.deliver(DeliverRequest { events: vec![event.clone()] }).await.unwrap().into_inner();
    assert_eq!(again.accepted, 0);
    let batch = client
        .deliver(DeliverRequest { events: vec![event, confirmation("event-2", "en")] })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batch.accepted, 1);

    let messages = app.delivered(2).await;
    assert_eq!(messages.len(), 2, "one message per event");
    let french = messages.iter().find(|m| m.contains("Content-Language: fr")).unwrap();
    assert!(french.contains("To: anne@example.fr"));
    assert!(french.contains("Votre rendez-vous de vaccination est confirmé."));
    assert!(french.contains("ABCD-EFGH") && french.contains("the-secret"));
    let english = messages.iter().find(|m| m.contains("Content-Language: en")).unwrap();
    assert!(english.contains("Your vaccination appointment is confirmed."));
}

async fn each_event_of_a_batch_is_answered_on_its_own(app: TestApp) {
    let mut client = app.client.clone();
    client.deliver(DeliverRequest { events: vec![confirmation("event-seen", "fr")] }).await.unwrap();
    // A kind this version does not know (decoded without its kind), an id
    // that cannot be one, a redelivery and a new event, in one batch.
    let no_kind = Event { id: "event-x".into(), kind: None, ..Default::default() };
    let bad_id = confirmation("event\0bad", "fr");
    let batch = vec![no_kind, bad_id, confirmation("event-seen", "fr"), confirmation("event-ok", "fr")];
    let answer = client.deliver(DeliverRequest { events: batch }).await.unwrap().into_inner();
    let outcomes: Vec<(String, Outcome)> =
        answer.outcomes.iter().map(|o| (o.event_id.clone(), Outcome::try_from(o.outcome).unwrap())).collect();
    assert_eq!(
        outcomes,
        [
            ("event-x".to_owned(), Outcome::UnknownKind),
            ("event\0bad".to_owned(), Outcome::Rejected),
            ("event-seen".to_owned(), Outcome::Duplicate),
            ("event-ok".to_owned(), Outcome::Accepted),
        ]
    );
    assert_eq!(answer.accepted, 1);
    assert!(answer.outcomes[1].reason.contains("id"), "{:?}", answer.outcomes[1]);
    assert_eq!(app.delivered(2).await.len(), 2, "the new event's message goes out with the first");
}

creneau_kit::backend_tests!(crate::helpers::spawn_app;
    an_event_becomes_one_message_however_often_it_is_relayed,
    each_event_of_a_batch_is_answered_on_its_own,
);
