//! Defects that sat in the old structure, each pinned by the scenario that showed it.

use crate::helpers::*;
use chrono::Duration;
use futures::future::BoxFuture;
use rappel::agenda::{Agenda, AgendaError, BuiltinAgenda, Capabilities};
use rappel::domain::types::{Channel, PhoneNumber};
use rappel::engine::Inbound;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

crate::on_both!(
    followers_closed_by_their_lead_have_a_ledger_row_of_their_own,
    the_builtin_agenda_stamps_its_writes_with_the_engine_clock,
    a_question_for_two_same_day_appointments_links_every_note_to_the_reply,
    a_write_back_is_applied_once_when_the_reply_path_and_the_timer_race,
    a_reply_from_an_unknown_number_is_filed_under_the_site_it_was_sent_to,
);

async fn two_same_day(app: &TestApp, phone: &str) {
    let day = wednesday();
    app.import(&format!(
        "{CSV_HEADER}{}{}",
        csv_row(
            "L1",
            "paris-nord",
            "RX-THO",
            &format!("{day}T09:00"),
            phone,
            ""
        ),
        csv_row(
            "F1",
            "paris-nord",
            "ECHO-PEL",
            &format!("{day}T11:00"),
            phone,
            ""
        )
    ))
    .await;
}

async fn followers_closed_by_their_lead_have_a_ledger_row_of_their_own(kind: Kind) {
    let app = spawn_app(kind).await;
    two_same_day(&app, "+33611110001").await;
    // Nobody answers: the lead ends unreachable, and its follower with it.
    app.run_until(paris(wednesday(), 10, 0)).await;
    assert_eq!(app.campaign_state("L1").await, "unreachable");
    assert_eq!(app.campaign_state("F1").await, "unreachable");
    let follower_rows = app
        .scalar(
            "SELECT COUNT(*) FROM events e JOIN campaigns c ON c.id = e.campaign_id \
             JOIN appointments a ON a.id = c.appointment_id \
             WHERE a.external_id = 'F1' AND e.kind = 'lead_closed' AND e.state = 'unreachable'",
        )
        .await;
    assert_eq!(
        follower_rows, 1,
        "the follower's own timeline says why it closed"
    );
}

async fn the_builtin_agenda_stamps_its_writes_with_the_engine_clock(kind: Kind) {
    let app = spawn_app(kind).await;
    app.book("T1", 10, 0, "+33611110002").await;
    app.at(paris(wednesday() - Duration::days(2), 9, 0)).await;
    app.clock.set(paris(wednesday() - Duration::days(2), 9, 30));
    app.patient_replies("+33611110002", "oui je confirme").await;
    assert_eq!(app.appointment_status("T1").await, "confirmed");
    let updated_at: i64 =
        sqlx::query_scalar("SELECT updated_at FROM appointments WHERE external_id = 'T1'")
            .fetch_one(&app.engine.db.pool)
            .await
            .unwrap();
    assert_eq!(
        updated_at,
        app.now().timestamp(),
        "the engine's clock, not the machine's"
    );
}

async fn a_question_for_two_same_day_appointments_links_every_note_to_the_reply(kind: Kind) {
    let app = spawn_app(kind).await;
    two_same_day(&app, "+33611110003").await;
    app.at(paris(wednesday() - Duration::days(2), 9, 0)).await;
    let text = "Bonjour, est-ce que je dois venir à jeun pour l'échographie ?";
    app.patient_replies("+33611110003", text).await;
    let reply_id: i64 = sqlx::query_scalar("SELECT id FROM replies")
        .fetch_one(&app.engine.db.pool)
        .await
        .unwrap();
    let notes: Vec<(Option<i64>, String)> =
        sqlx::query_as("SELECT reply_id, detail FROM notes WHERE campaign_id IS NOT NULL")
            .fetch_all(&app.engine.db.pool)
            .await
            .unwrap();
    assert_eq!(notes.len(), 2, "one note per appointment: {notes:?}");
    for (linked, detail) in notes {
        assert_eq!(linked, Some(reply_id), "linked by id");
        assert_eq!(detail, text, "the secretary reads what the patient wrote");
    }
}

/// The built-in agenda, slowed down, counting the write-backs it receives.
struct CountingAgenda {
    inner: BuiltinAgenda,
    calls: Arc<AtomicUsize>,
}

impl Agenda for CountingAgenda {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn confirm(&self, id: i64, version: i64) -> BoxFuture<'_, Result<(), AgendaError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            self.inner.confirm(id, version).await
        })
    }
    fn release(&self, id: i64, version: i64) -> BoxFuture<'_, Result<(), AgendaError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            self.inner.release(id, version).await
        })
    }
}

async fn a_write_back_is_applied_once_when_the_reply_path_and_the_timer_race(kind: Kind) {
    let mut app = spawn_app(kind).await;
    let calls = Arc::new(AtomicUsize::new(0));
    app.engine.agenda = Arc::new(CountingAgenda {
        inner: BuiltinAgenda::new(app.engine.db.clone(), app.clock.clone()),
        calls: calls.clone(),
    });
    app.book("O1", 10, 0, "+33611110004").await;
    app.at(paris(wednesday() - Duration::days(2), 9, 0)).await;
    // The outbox timer drains every few milliseconds while the reply path applies its own row.
    let timer = {
        let engine = app.engine.clone();
        tokio::spawn(async move {
            for _ in 0..100 {
                engine.drain_outbox().await.expect("drain");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
    };
    app.patient_replies("+33611110004", "oui").await;
    timer.await.unwrap();
    assert_eq!(app.appointment_status("O1").await, "confirmed");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one write-back, not two overlapping ones"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM outbox WHERE state = 'done'")
            .await,
        1
    );
}

async fn a_reply_from_an_unknown_number_is_filed_under_the_site_it_was_sent_to(kind: Kind) {
    let app = spawn_app(kind).await;
    let out = app
        .engine
        .handle_inbound(Inbound {
            to: Some("+262693000001".into()),
            ..Inbound::text(
                "SMUNKNOWN1",
                PhoneNumber::parse("+262692123456").unwrap(),
                Channel::Sms,
                "C'est pour le scanner de ma mère",
            )
        })
        .await
        .unwrap();
    assert_eq!(out.campaign_id, None);
    let (site, detail): (String, String) = sqlx::query_as("SELECT site_id, detail FROM notes")
        .fetch_one(&app.engine.db.pool)
        .await
        .unwrap();
    assert_eq!(
        site, "saint-denis-reunion",
        "the site that owns the number written to"
    );
    assert!(
        detail.contains("+262692123456"),
        "the secretary can call back: {detail}"
    );
    assert!(
        detail.contains("scanner de ma mère"),
        "and knows what was asked: {detail}"
    );
}
