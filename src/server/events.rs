//! What the modems hand the gateway: inbound texts and status reports, stored and made durable
//! before the driver may delete them from the SIM, and the minute's housekeeping that goes
//! with them.

use tokio::sync::mpsc;

use crate::dispatch::{Clock, Dispatcher};
use crate::inbound::Inbox;
use crate::modem::ModemEvent;
use crate::store::Store;
use crate::store::inbound::Received;
use crate::store::reports::REPORT_MAX_AGE;

/// Most status reports applied with one disk flush.
const REPORT_BURST: usize = 64;

/// Modem events. An inbound message or a status report is stored and made durable before the
/// driver may delete it from the SIM (a report is matched to its message by
/// [`crate::reports::handle_batch`]). Once a minute, concatenated messages whose parts waited longer
/// than `reassembly_timeout` are released as partial, sent parts that waited longer than
/// [`REPORT_MAX_AGE`] stop waiting for their status report, and (with a shared store)
/// messages left `sending` on a modem no gateway drives any more become `unknown`.
pub(super) async fn consume_events(
    mut rx: mpsc::Receiver<ModemEvent>,
    store: Store,
    inbox: Inbox,
    dispatcher: Dispatcher,
    clock: Clock,
    reassembly_timeout: std::time::Duration,
    default_region: Option<String>,
) {
    let mut sweep = tokio::time::interval(std::time::Duration::from_secs(60));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // An event taken off the channel while gathering a burst of status reports.
    let mut next: Option<ModemEvent> = None;
    loop {
        let ev = tokio::select! {
            ev = async { match next.take() { Some(ev) => Some(ev), None => rx.recv().await } } => match ev {
                Some(ev) => ev,
                None => return,
            },
            _ = sweep.tick() => {
                // One gateway of those sharing a store sweeps (and acts on what is pending).
                if !store.does_job("housekeeping") {
                    continue;
                }
                if let Err(e) = store.forget_stale_leases() {
                    tracing::warn!(error = %e, "cannot remove expired leases");
                }
                let now = clock.now();
                let cutoff = now - chrono::Duration::from_std(reassembly_timeout).unwrap_or_default();
                match store.release_stale_fragments(cutoff, now) {
                    Ok(released) => {
                        for m in released {
                            tracing::warn!(id = %m.id, from = %crate::numbers::masked(&m.from), parts = m.parts_received, total = m.total_parts, "inbound message released incomplete");
                        }
                        // Whatever is still to act on (released ones, or a failure before).
                        inbox.handle_pending().await;
                    }
                    Err(e) => tracing::error!(error = %e, "cannot release incomplete inbound messages"),
                }
                if let Err(e) = dispatcher.recover_orphans(now) {
                    tracing::error!(error = %e, "cannot look for messages left sending on a modem no gateway drives");
                }
                match store.sweep_reports(now - REPORT_MAX_AGE) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(parts = n, "sent parts stopped waiting for a status report"),
                    Err(e) => tracing::error!(error = %e, "cannot sweep the status report index"),
                }
                continue;
            }
        };
        match ev {
            ModemEvent::State {
                modem,
                state,
                reason,
            } => tracing::debug!(modem, state = state.as_str(), reason, "modem state"),
            ModemEvent::Message(m) => {
                let received = match &m.unreadable {
                    Some(u) => store.receive_unreadable(
                        &m.modem,
                        &u.answer,
                        &m.pdu,
                        &u.reason,
                        clock.now(),
                    ),
                    None => {
                        let region = default_region.as_deref().or(m.region.as_deref());
                        store.receive(&m.modem, &m.pdu, region, clock.now())
                    }
                };
                let stored = match received {
                    Ok(r) => store.durable().await.map(|()| r),
                    Err(e) => Err(e),
                };
                match stored {
                    Ok(r) => {
                        let stored = match r {
                            Received::Stored(im) => {
                                tracing::info!(id = %im.id, modem = %im.modem, from = %crate::numbers::masked(&im.from), parts = im.parts_received, "inbound message stored");
                                metrics::counter!(crate::metrics::INBOUND, "modem" => im.modem.clone())
                                    .increment(1);
                                if let Some(why) = &im.decode_error {
                                    tracing::warn!(id = %im.id, modem = %im.modem, reason = %why, "unreadable inbound message kept raw");
                                    metrics::counter!(crate::metrics::INBOUND_UNREADABLE, "modem" => im.modem.clone())
                                        .increment(1);
                                }
                                store.publish_inbound(&im);
                                Some(im)
                            }
                            Received::Held { part, total } => {
                                tracing::debug!(modem = %m.modem, part, total, "inbound part held");
                                None
                            }
                            Received::Duplicate => {
                                tracing::debug!(modem = %m.modem, "inbound PDU already stored");
                                None
                            }
                        };
                        m.ack();
                        if let Some(im) = stored
                            && let Err(e) = inbox.handle(&im).await
                        {
                            // It stays pending and is acted on at the next sweep or start.
                            tracing::error!(inbound_id = %im.id, error = %e, "cannot act on an inbound message yet");
                        }
                    }
                    Err(e) => {
                        // Not acknowledged: it stays on the SIM and is offered again.
                        tracing::error!(modem = %m.modem, error = %e, "cannot store an inbound message; it stays on the SIM");
                    }
                }
            }
            ModemEvent::StatusReport(m) => {
                // The reports already waiting go with it, made durable by one flush.
                let mut burst = vec![m];
                while burst.len() < REPORT_BURST {
                    match rx.try_recv() {
                        Ok(ModemEvent::StatusReport(r)) => burst.push(r),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                // Logged inside; on an error a report stays on the SIM.
                let _ = crate::reports::handle_batch(
                    &store,
                    &dispatcher.under_way(),
                    burst,
                    clock.now(),
                )
                .await;
            }
        }
    }
}
