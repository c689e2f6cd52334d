//! A message that cannot be sent is set aside after a few attempts while
//! the others go out, and sent once when replayed after the fix.

use std::time::Duration;

use creneau_proto::notification::v1::DeliverRequest;
use creneau_proto::operations::v1::dead_letters_client::DeadLettersClient;
use creneau_proto::operations::v1::{ListDeadLettersRequest, ReplayDeadLettersRequest};
use sea_orm::ConnectionTrait;

use crate::helpers::{TestApp, confirmation};

async fn a_message_that_cannot_be_sent_is_set_aside_and_replayed_once_fixed(app: TestApp) {
    // Its file's place in the maildir is taken by a directory: every send
    // of this one message fails.
    let blocked = app.maildir.join("new").join("stuck-message.eml");
    std::fs::create_dir_all(blocked.join("in-the-way")).unwrap();
    for sql in [
        "INSERT INTO received_events (event_id, kind, received_at) VALUES ('stuck', 'booking.confirmed', CURRENT_TIMESTAMP)",
        "INSERT INTO messages (id, event_id, channel, recipient, subject, body, language, created_at, attempts) \
         VALUES ('stuck-message', 'stuck', 'email', 'anne@example.fr', 'Objet', 'Corps', 'fr', CURRENT_TIMESTAMP, 0)",
    ] {
        app.db.execute_unprepared(sql).await.unwrap();
    }
    app.client.clone().deliver(DeliverRequest { events: vec![confirmation("event-1", "fr")] }).await.unwrap();
    assert_eq!(app.delivered(1).await.len(), 1, "the other message goes out");

    let mut client = DeadLettersClient::new(creneau_kit::testing::channel(app.port).await);
    let mut listed = Vec::new();
    for _ in 0..100 {
        listed =
            client.list_dead_letters(ListDeadLettersRequest { limit: 10 }).await.unwrap().into_inner().dead_letters;
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!((listed[0].id.as_str(), listed[0].kind.as_str(), listed[0].attempts), ("stuck-message", "email", 3));
    assert!(!listed[0].reason.is_empty());

    std::fs::remove_dir_all(&blocked).unwrap();
    let replayed = client
        .replay_dead_letters(ReplayDeadLettersRequest { ids: vec![], all: true })
        .await
        .unwrap()
        .into_inner()
        .replayed;
    assert_eq!(replayed, 1);
    let messages = app.delivered(2).await;
    assert_eq!(messages.iter().filter(|m| m.contains("Message-ID: <stuck-message@creneau>")).count(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.delivered(2).await.len(), 2, "sent once");
    assert!(
        client
            .list_dead_letters(ListDeadLettersRequest { limit: 0 })
            .await
            .unwrap()
            .into_inner()
            .dead_letters
            .is_empty()
    );
}

creneau_kit::backend_tests!(crate::helpers::spawn_app;
    a_message_that_cannot_be_sent_is_set_aside_and_replayed_once_fixed,
);
