use creneau_proto::notification::v1::{DeliverRequest, Event};
use tonic::Code;

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

async fn a_malformed_batch_is_refused_whole(app: TestApp) {
    let mut client = app.client.clone();
    let no_kind = Event { id: "event-x".into(), kind: None, ..Default::default() };
    let err =
        client.deliver(DeliverRequest { events: vec![confirmation("event-ok", "fr"), no_kind] }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // Nothing of the batch was taken: the valid event is still new.
    let retry =
        client.deliver(DeliverRequest { events: vec![confirmation("event-ok", "fr")] }).await.unwrap().into_inner();
    assert_eq!(retry.accepted, 1);
}

creneau_kit::backend_tests!(crate::helpers::spawn_app;
    an_event_becomes_one_message_however_often_it_is_relayed,
    a_malformed_batch_is_refused_whole,
);
